"""How large MACE's random-init gap between the two 4-chains is (docs/expressivity.md,
"What kept the gaps small", MACE). Without ``a_norm`` the A-basis is ~1e-3 per component
after three layers, so the products of A's that first tell the chains apart (order 2 at
layer 3) are ~1e-6 and their difference ~1e-13, against node scalars of ~0.1 kept up by
the self-connection: relative gap 1e-13..5e-12 (float64, seeds 0-2). ``a_norm: true``
(per-structure normalisation of A, as the expressivity code's current MACE applies e3nn
BatchNorm) lifts A to
unit size and the gap to 4e-2..1.6e-1. The threshold sits between the two, 40 times
below the smallest measured with ``a_norm`` and 1e8 times above the largest without.
"""

from __future__ import annotations

import torch
from e3nn import o3
from expressivity_cases import chain_gap, shipped

from geocompose.nn.interaction.mace import StructureNorm
from geocompose.testing import assert_symmetry

THRESHOLD = 1e-3


def test_mace_with_a_norm_separates_4_chains_at_3_layers_by_a_trainable_gap():
    result = chain_gap(shipped("mace", a_norm=True), 3)
    assert all(result.separated), result
    assert min(result.relative_gaps) > THRESHOLD, result  # measured 4e-2 (seeds 0-2)


def test_mace_without_a_norm_has_a_vanishing_gap():
    """The control: products of A's of size ~1e-3 leave a relative gap of ~1e-13."""
    result = chain_gap(shipped("mace", a_norm=False), 3)
    assert max(result.relative_gaps) < THRESHOLD * 1e-6, result


def test_structure_norm_is_per_structure_and_unit_sized():
    torch.manual_seed(0)
    irreps = o3.Irreps("3x0e + 2x1o + 2x0o")
    norm = StructureNorm(irreps).double()
    x = torch.randn(7, irreps.dim, dtype=torch.float64) * 1e-3 + 0.5
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    y = norm(x, batch, 2)
    # Each structure normalised alone: batching changes nothing.
    assert torch.allclose(y[:3], norm(x[:3], batch[:3], 1))
    assert torch.allclose(y[3:], norm(x[3:], batch[3:] - 1, 1))
    for s in (0, 1):
        ys = y[batch == s]
        scalars = ys[:, :3]
        assert torch.allclose(scalars.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-12)
        # unit mean square per channel and component (vectors are not centred: ms ~0.25 >> eps)
        vec = ys[:, 3:9].reshape(-1, 2, 3)
        assert torch.allclose(
            vec.pow(2).mean(-1).mean(0), torch.ones(2, dtype=torch.float64), atol=1e-4
        )
    # Pseudo-scalars (0o) are scaled, never shifted: their sign flips with parity.
    assert torch.allclose(norm(-x, batch, 2)[:, 9:], -y[:, 9:])


def test_mace_with_a_norm_keeps_every_symmetry_check():
    """Per-structure statistics of invariants keep the block O(3)-equivariant, permutation-
    and batch-independent and smooth at the cutoff (``geocompose verify``: measured <= 1.2e-14)."""
    data = shipped("mace", a_norm=True, features="4x0e + 4x1o", radial_hidden=[8])
    assert_symmetry(data)


def test_shipped_mace_a_norm_is_mace_with_a_norm():
    """The blueprint the expressivity table uses differs from mace.yaml by a_norm alone."""
    assert shipped("mace-a-norm")["interactions"] == shipped("mace", a_norm=True)["interactions"]
    assert shipped("mace-a-norm")["embedding"] == shipped("mace")["embedding"]
