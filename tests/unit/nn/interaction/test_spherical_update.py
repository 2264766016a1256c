"""The node update's e3nn equivalents: the species self-connection takes its paths from
ops/paths.py and keeps e3nn's fully connected product's instructions and weights (same
outputs to round-off without forming the product); the gate is e3nn's ``nn.Gate``
(same irreps, same input order, same outputs and gradients)."""

from __future__ import annotations

import pytest
import torch
from e3nn import nn as enn
from e3nn import o3

from geocompose.nn.interaction.spherical import exact_constants
from geocompose.nn.interaction.spherical_update import Gate, SpeciesSelfConnection, _scalar_acts


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
    with exact_constants():  # float64 constants on both sides, as the compiler builds them
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
    # The same function, evaluated without the one-hot product: equal to round-off.
    torch.testing.assert_close(ours(x, species), theirs(x, onehot), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    ("scalars", "gated"),
    [
        ("16x0e", "8x1o + 4x2e"),  # NequIP's layers
        ("4x0e + 3x0o", "2x1o + 2x1e + 1x2e"),  # odd scalars: sorting moves the gates
        ("16x0e", ""),  # scalars only: the last layer
        ("", "3x1o + 1x2e"),  # nothing but gated irreps
        ("2x0o", "1x1e"),
    ],
)
def test_gate_equals_e3nn_gate(scalars, gated):
    scalars, gated = o3.Irreps(scalars), o3.Irreps(gated)
    gates = o3.Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps else o3.Irreps("")
    theirs = enn.Gate(
        scalars, _scalar_acts(scalars, "silu"), gates, [torch.sigmoid] if gates else [], gated
    )
    ours = Gate(scalars, "silu", gated)
    assert ours.irreps_in == theirs.irreps_in
    assert ours.irreps_out == theirs.irreps_out
    x = torch.randn(7, ours.irreps_in.dim, dtype=torch.float64, requires_grad=True)
    y_ours, y_theirs = ours(x), theirs(x)
    torch.testing.assert_close(y_ours, y_theirs, rtol=1e-13, atol=1e-13)
    # Twice differentiable alike (training on forces differentiates the gradient).
    probe = torch.randn_like(y_ours)
    (g_ours,) = torch.autograd.grad(y_ours, x, probe, create_graph=True)
    (g_theirs,) = torch.autograd.grad(y_theirs, x, probe, create_graph=True)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-12, atol=1e-12)
    (h_ours,) = torch.autograd.grad(g_ours.square().sum(), x)
    (h_theirs,) = torch.autograd.grad(g_theirs.square().sum(), x)
    torch.testing.assert_close(h_ours, h_theirs, rtol=1e-11, atol=1e-11)
