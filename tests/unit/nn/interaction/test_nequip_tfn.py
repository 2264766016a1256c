"""NequIP and TFN (one shared point convolution): typing, shapes and direct O(3) checks."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3
from spherical_cases import (
    assert_block_equivariant,
    ctx,
    equivariance_errors,
    odd_features,
    positions,
    rotation,
    state_for,
    transform_state,
    upstream,
)

from geocompose.nn.interaction.nequip import NequIPInteraction, NequIPParams, SphericalConvolution
from geocompose.nn.interaction.tfn import TFNInteraction, TFNParams
from geocompose.types import TypeRefusal
from geocompose.types import fields as F
from geocompose.types.irreps import wigner_d

BLOCKS = {"nequip": (NequIPInteraction, NequIPParams), "tfn": (TFNInteraction, TFNParams)}


def build(name: str, features_in: str, l_max: int = 2, seed: int = 0, **params):
    cls, Params = BLOCKS[name]
    torch.manual_seed(seed)
    types = upstream(features_in, l_max)
    return cls(Params(**params), types, ctx()).double(), types


def test_tfn_is_the_shared_convolution_with_other_defaults():
    assert issubclass(TFNInteraction, SphericalConvolution) and issubclass(
        NequIPInteraction, SphericalConvolution
    )
    assert TFNInteraction.message is NequIPInteraction.message  # one tensor-product loop
    tfn, nequip = TFNParams(), NequIPParams()
    assert (tfn.nonlinearity, nequip.nonlinearity) == ("norm", "gate")
    assert (tfn.self_connection, nequip.self_connection) == ("linear", "species")


@pytest.mark.parametrize("name", ["nequip", "tfn"])
@pytest.mark.parametrize(
    ("features_in", "features"),
    [
        ("6x0e", "4x0e + 2x1o + 2x2e"),  # first layer: scalars from the embedding
        ("4x0e + 2x1o + 2x2e", "4x0e + 2x1o + 2x2e"),  # residual
        (odd_features(), odd_features()),  # every parity up to l = 2
        (odd_features(), "3x0o + 2x1e + 1x2o + 2x0e"),  # unsorted, odd outputs only plus 0e
    ],
)
def test_equivariant_under_rotation_and_reflection(name, features_in, features):
    block, types = build(name, features_in, features=features)
    state = state_for(positions(1, n=7), types)
    assert_block_equivariant(block, state, types, seed=3)


@pytest.mark.parametrize("nonlinearity", ["gate", "norm", "none"])
@pytest.mark.parametrize("mode", ["uvu", "uvw"])
def test_every_nonlinearity_and_mode_is_equivariant(nonlinearity, mode):
    block, types = build(
        "nequip",
        odd_features(1),
        features=odd_features(1),
        nonlinearity=nonlinearity,
        tensor_product={"mode": mode},
    )
    assert_block_equivariant(block, state_for(positions(2, n=5), types), types, seed=5)


def test_explicit_pseudovector_path_is_equivariant_and_nonzero():
    block, types = build(
        "nequip",
        "4x0e + 3x1o",
        l_max=1,
        features="4x0e + 3x1e",
        tensor_product={"paths": ["1o x 1o -> 1e", "0e x 0e -> 0e"]},
        self_connection="none",
    )
    state = state_for(positions(3, n=6), types)
    out = block(state)[F.NODE_FEATURES]
    assert out[:, 4:].abs().max() > 1e-3  # the 1e channels are really fed by the cross product
    assert_block_equivariant(block, state, types, seed=7)


def test_the_check_catches_a_parity_bug():
    """Relabel the written 1e as 1o (a planted reflection bug): -R must expose it."""
    block, types = build(
        "nequip",
        "4x0e + 3x1o",
        l_max=1,
        features="4x0e + 3x1e",
        tensor_product={"paths": ["1o x 1o -> 1e", "0e x 0e -> 0e"]},
    )
    state = state_for(positions(3, n=6), types)
    with torch.no_grad():
        out = block(state)[F.NODE_FEATURES]
        R = -rotation(0)
        moved = block(transform_state(state, types, R))[F.NODE_FEATURES]
        wrong = o3.Irreps("4x0e + 3x1o")
        error = (moved - out @ wigner_d(wrong, R).T).abs().max()
    assert error > 1e-3
    assert max(equivariance_errors(block, state, types).values()) < 1e-11


@pytest.mark.parametrize("name", ["nequip", "tfn"])
def test_shapes_isolated_atoms_and_signature(name):
    block, types = build(name, "6x0e", features="5x0e + 3x1o + 2x2e")
    sig = block.sig
    assert sig.writes[F.NODE_FEATURES].irreps == o3.Irreps("5x0e + 3x1o + 2x2e")
    assert sig.guarantee.value == "O(3)"
    assert F.EDGE_ANGULAR in sig.reads and F.SPECIES in sig.reads
    assert any("0e x 2e -> 2e" in note for note in sig.notes)  # paths listed for `info`
    x = torch.cat([positions(4, n=5), torch.tensor([[50.0, 0.0, 0.0]], dtype=torch.float64)])
    state = state_for(x, types)
    out = block(state)[F.NODE_FEATURES]
    assert out.shape == (6, o3.Irreps("5x0e + 3x1o + 2x2e").dim)
    assert torch.isfinite(out).all()
    assert out[5, 5:].abs().max() < 1e-12  # an atom with no neighbours has no l > 0 features


def test_forces_are_finite_for_coincident_atoms():
    block, types = build("tfn", "6x0e", features="4x0e + 2x1o")
    x = positions(5, n=4)
    x = torch.cat([x, x[:1]]).requires_grad_(True)  # a zero-length edge
    state = state_for(x, types)
    first = block(state)[F.NODE_FEATURES]
    second = block({**state, F.NODE_FEATURES: torch.cat([first[:, :4], first[:, :2]], dim=-1)})
    (grad,) = torch.autograd.grad(second[F.NODE_FEATURES].sum(), x)
    assert torch.isfinite(grad).all()


def test_refuses_without_edge_harmonics_with_the_fix():
    refusal = NequIPInteraction.signature(NequIPParams(), upstream("8x0e", l_max=None), ctx())
    assert isinstance(refusal, TypeRefusal)
    assert F.EDGE_ANGULAR in refusal.message and "embedding.angular.l_max" in refusal.hint


def test_refuses_l_max_above_the_harmonics():
    params = NequIPParams(tensor_product={"l_max": 3})
    refusal = NequIPInteraction.signature(params, upstream("8x0e", l_max=2), ctx())
    assert isinstance(refusal, TypeRefusal) and "l_max = 3" in refusal.message


def test_refuses_a_parity_violating_path_naming_it():
    params = NequIPParams(tensor_product={"paths": ["1o x 1o -> 1o"]})
    refusal = NequIPInteraction.signature(params, upstream("8x0e + 4x1o"), ctx())
    assert isinstance(refusal, TypeRefusal) and "1o x 1o -> 1o" in refusal.message
    assert "parity" in refusal.message


def test_lower_l_max_truncates_the_harmonics():
    block, types = build(
        "nequip", "6x0e", l_max=2, features="4x0e + 2x1o", tensor_product={"l_max": 1}
    )
    assert block.plan.irreps_in2 == o3.Irreps("1x0e + 1x1o")
    assert_block_equivariant(block, state_for(positions(6, n=5), types), types)


@pytest.mark.parametrize("node", ["3x0e + 2x1o + 2x2e", odd_features(1)])
def test_channelwise_product_equals_e3nn_tensor_product(node):
    """The fast uvu kernel is e3nn's TensorProduct: same layout, weights, normalisation,
    and gradients (the reference stays e3nn)."""
    from geocompose.nn.interaction.spherical import (
        ChannelwiseProduct,
        channel_major,
        component_major,
        exact_constants,
    )
    from geocompose.nn.ops.paths import enumerate_paths

    plan = enumerate_paths(o3.Irreps(node), o3.Irreps.spherical_harmonics(3))
    with exact_constants():
        fast, reference = ChannelwiseProduct(plan), plan.tensor_product()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, plan.irreps_in1.dim, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(7, plan.irreps_in2.dim, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, plan.weight_numel, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.equal(channel_major(component_major(x, plan.irreps_in1), plan.irreps_in1), x)
    out_fast = channel_major(fast(component_major(x, plan.irreps_in1), y, w), plan.irreps_out)
    out_ref = reference(x, y, w)
    assert torch.allclose(out_fast, out_ref, atol=1e-12)
    probe = torch.randn_like(out_ref)
    grads_fast = torch.autograd.grad((out_fast * probe).sum(), (x, y, w))
    grads_ref = torch.autograd.grad((out_ref * probe).sum(), (x, y, w))
    for a, b in zip(grads_fast, grads_ref):
        assert torch.allclose(a, b, atol=1e-12)
