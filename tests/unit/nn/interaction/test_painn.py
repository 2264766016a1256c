"""PaiNN: typing, shapes, zero-vector start, NaN safety and direct O(3) equivariance."""

from __future__ import annotations

import pytest
import torch
from cartesian_cases import (
    assert_block_equivariant,
    assert_finite_with_gradients,
    ctx,
    positions,
    state_for,
    upstream,
)
from e3nn import o3

from geocompose.nn.interaction.painn import PaiNNInteraction, PaiNNParams
from geocompose.nn.ops.cartesian import to_cartesian
from geocompose.types import TypeRefusal
from geocompose.types import fields as F


def build(features: str, seed: int = 0, **params) -> PaiNNInteraction:
    torch.manual_seed(seed)
    types = upstream(features)
    return PaiNNInteraction(PaiNNParams(**params), types, ctx()).double()


@pytest.mark.parametrize(
    ("features", "written"),
    [
        ("8x0e", "8x0e + 8x1o"),
        ("8x0e + 8x1o", "8x0e + 8x1o"),
        ("4x0e + 2x1o", "4x0e + 4x1o"),
        ("1x0e", "1x0e + 1x1o"),
    ],
)
def test_signature_writes_scalars_and_vectors(features, written):
    sig = PaiNNInteraction.signature(PaiNNParams(), upstream(features), ctx())
    assert sig.writes[F.NODE_FEATURES].irreps == o3.Irreps(written)
    assert sig.guarantee.value == "O(3)"


@pytest.mark.parametrize("features", ["8x0e + 2x2e", "8x0e + 8x1e", "4x1o"])
def test_signature_refuses_what_it_cannot_read(features):
    refusal = PaiNNInteraction.signature(PaiNNParams(), upstream(features), ctx())
    assert isinstance(refusal, TypeRefusal) and "painn" in refusal.message


def test_signature_names_a_missing_field():
    types = upstream("8x0e")
    del types[F.EDGE_RADIAL]
    refusal = PaiNNInteraction.signature(PaiNNParams(), types, ctx())
    assert isinstance(refusal, TypeRefusal) and F.EDGE_RADIAL in refusal.message


@pytest.mark.parametrize("features", ["8x0e", "8x0e + 8x1o", "5x0e + 3x1o", "1x0e"])
def test_equivariant_under_rotation_reflection_translation(features):
    block = build(features)
    types = upstream(features)
    assert_block_equivariant(block, state_for(positions(1, n=7), types), types, seed=3)


def test_shapes_and_vectors_start_at_zero():
    block = build("8x0e")
    types = upstream("8x0e")
    state = state_for(positions(2, n=5, isolated=True), types)
    out = block(state)[F.NODE_FEATURES]
    assert out.shape == (6, 8 + 3 * 8)
    _, v = to_cartesian(out, o3.Irreps("8x0e + 8x1o"))
    # The isolated atom (last) gets no message: its vectors stay exactly zero and its
    # scalars change only through its own update.
    assert torch.equal(v[-1], torch.zeros(8, 3, dtype=torch.float64))
    assert v[:-1].abs().sum() > 0


def test_matches_a_transcription_of_the_paper_equations():
    """Eqs. 7–12 written out with explicit loops over edges, against the block."""
    block = build("3x0e + 3x1o", seed=4)
    types = upstream("3x0e + 3x1o")
    state = state_for(positions(5, n=4), types)
    s, v = to_cartesian(state[F.NODE_FEATURES], o3.Irreps("3x0e + 3x1o"))
    ds, dv = torch.zeros_like(s), torch.zeros_like(v)
    phi = block.phi(s)
    for e, (j, i) in enumerate(state[F.EDGE_INDEX].T.tolist()):
        w = block.filter(state[F.EDGE_RADIAL][e]) * state[F.EDGE_ENVELOPE][e]
        x_s, x_vv, x_vs = (phi[j] * w).split(3)
        r = state[F.EDGE_VECTORS][e]
        ds[i] += x_s
        dv[i] += x_vv[:, None] * v[j] + x_vs[:, None] * (r / r.norm())[None, :]
    s, v = s + ds, v + dv
    uv = torch.einsum("kc,ncx->nkx", block.mix_u.weight, v)
    vv = torch.einsum("kc,ncx->nkx", block.mix_v.weight, v)
    smooth_norm = (vv.pow(2).sum(-1) + 1).sqrt() - 1  # sqrt(|V v|^2 + 1) - 1
    a_vv, a_sv, a_ss = block.gate(torch.cat([s, smooth_norm], -1)).split(3, dim=-1)
    s = s + a_ss + a_sv * (uv * vv).sum(-1)
    v = v + a_vv[..., None] * uv
    out_s, out_v = to_cartesian(block(state)[F.NODE_FEATURES], o3.Irreps("3x0e + 3x1o"))
    assert torch.allclose(out_s, s, atol=1e-12) and torch.allclose(out_v, v, atol=1e-12)


@pytest.mark.parametrize("features", ["8x0e", "8x0e + 8x1o"])
def test_finite_with_coincident_and_isolated_atoms(features):
    block = build(features)
    types = upstream(features)
    state = state_for(positions(6, n=4, coincident=True, isolated=True), types)
    assert (state[F.EDGE_LENGTHS] == 0).any(), "the case needs a zero-length edge"
    assert_finite_with_gradients(block, state)


def test_zero_vectors_give_finite_second_derivatives():
    """Training on gradient forces differentiates twice; zero vectors must not NaN."""
    block = build("4x0e + 4x1o")
    types = upstream("4x0e + 4x1o")
    state = state_for(positions(7, n=1), types)  # one atom: no edges at all
    features = (
        torch.cat([torch.randn(1, 4), torch.zeros(1, 12)], dim=-1).double().requires_grad_(True)
    )
    out = block(dict(state, **{F.NODE_FEATURES: features}))[F.NODE_FEATURES]
    (grad,) = torch.autograd.grad(out.pow(2).sum(), features, create_graph=True)
    (second,) = torch.autograd.grad(grad.sum(), features)
    assert torch.isfinite(grad).all() and torch.isfinite(second).all()


def test_the_direct_check_catches_a_planted_defect():
    """A block that leaks a fixed axis (reads raw x coordinates) must fail the check."""
    block = build("4x0e")
    types = upstream("4x0e")
    state = state_for(positions(8, n=5), types)
    honest = block.forward

    def leaky(state):
        out = honest(state)
        features = out[F.NODE_FEATURES].clone()
        features[:, 0] += state[F.POSITIONS][:, 0]
        return {F.NODE_FEATURES: features}

    block.forward = leaky
    with pytest.raises(AssertionError, match="breaks"):
        assert_block_equivariant(block, state, types)
