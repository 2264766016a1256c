"""GVP-GNN: typing, the GVP itself, NaN safety and direct O(3) equivariance."""

from __future__ import annotations

import pytest
import torch
from cartesian_cases import (
    assert_block_equivariant,
    assert_finite_with_gradients,
    ctx,
    positions,
    rotation,
    state_for,
    upstream,
)
from e3nn import o3

from geocompose.nn.interaction.gvp import GVP, GVPInteraction, GVPParams
from geocompose.nn.ops.cartesian import to_cartesian
from geocompose.types import TypeRefusal
from geocompose.types import fields as F


def build(features: str, seed: int = 0, **params) -> GVPInteraction:
    torch.manual_seed(seed)
    return GVPInteraction(GVPParams(**{"vectors": 3, **params}), upstream(features), ctx()).double()


@pytest.mark.parametrize(
    ("features", "vectors", "written"),
    [
        ("6x0e", 3, "6x0e + 3x1o"),
        ("6x0e + 3x1o", 3, "6x0e + 3x1o"),
        ("4x0e + 5x1o", 2, "4x0e + 2x1o"),
    ],
)
def test_signature(features, vectors, written):
    sig = GVPInteraction.signature(GVPParams(vectors=vectors), upstream(features), ctx())
    assert sig.writes[F.NODE_FEATURES].irreps == o3.Irreps(written)
    refusal = GVPInteraction.signature(GVPParams(), upstream("4x0e + 2x2e"), ctx())
    assert isinstance(refusal, TypeRefusal) and "gvp" in refusal.message


@pytest.mark.parametrize("gate", [True, False])
@pytest.mark.parametrize("act", ["silu", None])
def test_gvp_is_equivariant_and_shaped(gate, act):
    torch.manual_seed(1)
    gvp = GVP(4, 3, 5, 2, act=act, vector_gate=gate).double()
    s, v = torch.randn(7, 4, dtype=torch.float64), torch.randn(7, 3, 3, dtype=torch.float64)
    s_out, v_out = gvp(s, v)
    assert s_out.shape == (7, 5) and v_out.shape == (7, 2, 3)
    for seed, improper in [(0, False), (1, True)]:
        R = rotation(seed, improper)
        s_rot, v_rot = gvp(s, v @ R.T)
        assert torch.allclose(s_rot, s_out, atol=1e-13) and torch.allclose(
            v_rot, v_out @ R.T, atol=1e-13
        )
    s_only, v_zero = GVP(4, 0, 5, 2, act=act, vector_gate=gate).double()(s, None)
    assert s_only.shape == (7, 5) and torch.equal(v_zero, torch.zeros(7, 2, 3, dtype=torch.float64))


@pytest.mark.parametrize(
    ("features", "params"),
    [
        ("6x0e", {}),
        ("6x0e + 3x1o", {"vector_gate": False}),
        ("4x0e + 5x1o", {"layer_norm": False}),
        ("1x0e", {"vectors": 1}),
    ],
)
def test_equivariant_under_rotation_reflection_translation(features, params):
    block = build(features, **params)
    types = upstream(features)
    state = state_for(positions(1, n=7), types)
    _, v = to_cartesian(block(state)[F.NODE_FEATURES], block.irreps_out[F.NODE_FEATURES])
    assert v.abs().max() > 1e-8, "vectors stayed zero"
    assert_block_equivariant(block, state, types, seed=9)


@pytest.mark.parametrize("features", ["6x0e", "6x0e + 3x1o"])
def test_finite_with_coincident_and_isolated_atoms(features):
    block = build(features)
    types = upstream(features)
    state = state_for(positions(4, n=4, coincident=True, isolated=True), types)
    assert (state[F.EDGE_LENGTHS] == 0).any()
    assert_finite_with_gradients(block, state)


def test_isolated_atom_keeps_zero_vectors_from_a_scalar_start():
    block = build("6x0e")
    types = upstream("6x0e")
    state = state_for(positions(3, n=4, isolated=True), types)
    _, v = to_cartesian(block(state)[F.NODE_FEATURES], block.irreps_out[F.NODE_FEATURES])
    assert torch.equal(v[-1], torch.zeros(3, 3, dtype=torch.float64))
