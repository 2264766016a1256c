"""The species self-connection takes its paths from ops/paths.py and stays e3nn's
fully connected product: same instructions, same weights at a seed, same outputs."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from geocompose.nn.interaction.spherical_update import SpeciesSelfConnection


@pytest.mark.parametrize(
    ("irreps_in", "irreps_out"),
    [
        ("5x0e", "4x0e + 4x1o"),  # first layer: 1o has no path, stays zero
        ("4x0e + 2x0o + 3x1o + 2x1e + 2x2e", "3x0e + 3x1o + 3x1e + 2x2e"),
        ("2x1o + 3x0e + 1x1o", "2x1o + 2x0e"),  # repeated, unsorted segments
        ("3x1o", "2x0e"),  # no common irrep: an all-zero map, as e3nn builds it
    ],
)
def test_species_self_connection_equals_fully_connected_product(irreps_in, irreps_out):
    num_species = 3
    torch.manual_seed(0)
    ours = SpeciesSelfConnection(o3.Irreps(irreps_in), o3.Irreps(irreps_out), num_species)
    torch.manual_seed(0)
    theirs = o3.FullyConnectedTensorProduct(irreps_in, f"{num_species}x0e", irreps_out)
    assert [tuple(i)[:5] for i in ours.tp.instructions] == [
        tuple(i)[:5] for i in theirs.instructions
    ]
    assert ours.tp.weight_numel == theirs.weight_numel
    for a, b in zip(ours.tp.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    ours, theirs = ours.double(), theirs.double()
    x = torch.randn(6, o3.Irreps(irreps_in).dim, dtype=torch.float64)
    species = torch.tensor([0, 1, 2, 2, 1, 0])
    onehot = torch.nn.functional.one_hot(species, num_species).double()
    assert torch.equal(ours(x, species), theirs(x, onehot))
