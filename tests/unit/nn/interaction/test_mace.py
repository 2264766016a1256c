"""MACE: A-basis, symmetric contraction (correlation order), typing and direct O(3) checks."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3
from spherical_cases import (
    assert_block_equivariant,
    ctx,
    positions,
    rotation,
    state_for,
    transform_state,
    upstream,
)

from geocompose.nn.interaction.mace import (
    MACEInteraction,
    MACEParams,
    SymmetricContraction,
    contraction_levels,
)
from geocompose.nn.interaction.spherical import exact_constants
from geocompose.types import TypeRefusal
from geocompose.types import fields as F
from geocompose.types.irreps import wigner_d


def build(features_in: str, l_max: int = 2, seed: int = 0, **params):
    torch.manual_seed(seed)
    types = upstream(features_in, l_max)
    return MACEInteraction(MACEParams(**params), types, ctx()).double(), types


def contraction(correlation: int, k: int = 3, l_max: int = 2, out: str = "0e + 1o", seed: int = 0):
    torch.manual_seed(seed)
    irreps_a = o3.Irreps([(k, ir) for _, ir in o3.Irreps.spherical_harmonics(l_max)])
    irreps_out = o3.Irreps([(k, ir) for _, ir in o3.Irreps(out)])
    with exact_constants():
        sc = SymmetricContraction(irreps_a, irreps_out, correlation, num_species=2)
    return sc, irreps_a, irreps_out


@pytest.mark.parametrize("correlation", [1, 2, 3, 4])
def test_contraction_is_a_polynomial_of_exactly_that_degree(correlation):
    """B(tA) is a polynomial in t of degree `correlation`: its (c+1)-th finite difference
    vanishes and its c-th does not (no constant term: B(0) = 0)."""
    sc, irreps_a, _ = contraction(correlation, l_max=1 if correlation == 4 else 2)
    a = torch.randn(4, irreps_a.dim, dtype=torch.float64)
    species = torch.tensor([0, 1, 1, 0])
    with torch.no_grad():
        values = [sc(t * a, species) for t in range(correlation + 2)]
    assert values[0].abs().max() == 0

    def difference(order: int) -> torch.Tensor:
        from math import comb

        return sum((-1) ** (order - i) * comb(order, i) * values[i] for i in range(order + 1))

    scale = max(float(v.abs().max()) for v in values)
    assert difference(correlation + 1).abs().max() < 1e-9 * scale
    assert difference(correlation).abs().max() > 1e-6 * scale


@pytest.mark.parametrize("correlation", [1, 2, 3])
def test_contraction_is_equivariant_with_species_weights(correlation):
    sc, irreps_a, irreps_out = contraction(correlation, out="0e + 0o + 1o + 1e + 2e + 2o")
    a = torch.randn(5, irreps_a.dim, dtype=torch.float64)
    species = torch.tensor([0, 1, 0, 1, 1])
    with torch.no_grad():
        for improper in (False, True):
            R = rotation(correlation, improper)
            moved = sc(a @ wigner_d(irreps_a, R).T, species)
            expected = sc(a, species) @ wigner_d(irreps_out, R).T
            assert (moved - expected).abs().max() < 1e-11 * max(1.0, float(expected.abs().max()))


def test_species_weights_differ_per_element():
    sc, irreps_a, _ = contraction(2)
    a = torch.randn(1, irreps_a.dim, dtype=torch.float64).repeat(2, 1)
    with torch.no_grad():
        out = sc(a, torch.tensor([0, 1]))
    assert (out[0] - out[1]).abs().max() > 1e-6


def test_pruned_self_couplings_vanish_identically():
    """The pruning at order 2 drops A_k (x) A_k couplings odd under exchange, e.g.
    1o x 1o -> 1e (a cross product of a vector with itself), 2e x 2e -> 1e, 3e: check they are 0."""
    irreps = o3.Irreps("3x1o + 3x2e")
    with exact_constants():
        tp = o3.TensorProduct(
            irreps,
            irreps,
            "3x1e + 3x1e + 3x3e",
            [(0, 0, 0, "uuu", False), (1, 1, 1, "uuu", False), (1, 1, 2, "uuu", False)],
        )
    a = torch.randn(4, irreps.dim, dtype=torch.float64)
    assert tp(a, a).abs().max() < 1e-12
    kept = {
        (i1, i2)
        for i1, i2, _ in contraction_levels(o3.Irreps("3x0e + 3x1o + 3x2e"), [o3.Irrep("1e")], 2)[
            1
        ].couplings
    }
    assert all(i1 <= i2 for i1, i2 in kept)  # (l2 x l1) duplicates of (l1 x l2) are dropped


@pytest.mark.parametrize(
    ("features_in", "features", "correlation"),
    [
        ("5x0e", "4x0e + 4x1o", 3),  # first layer
        ("4x0e + 4x1o", "4x0e + 4x1o", 2),
        ("2x0e + 2x0o + 2x1o + 2x1e + 2x2o", "2x0e + 2x0o + 2x1e + 2x2o", 3),  # odd parities
    ],
)
def test_block_is_equivariant_under_rotation_and_reflection(features_in, features, correlation):
    block, types = build(features_in, features=features, correlation=correlation)
    assert_block_equivariant(block, state_for(positions(1, n=6), types), types, seed=2)


def test_shapes_and_signature():
    block, types = build("5x0e", features="4x0e + 4x1o", correlation=3)
    assert block.sig.writes[F.NODE_FEATURES].irreps == o3.Irreps("4x0e + 4x1o")
    assert any("A-basis" in note for note in block.sig.notes)
    state = state_for(positions(2, n=5), types)
    out = block(state)[F.NODE_FEATURES]
    assert out.shape == (5, 16) and torch.isfinite(out).all()


def test_empty_batch_gives_empty_features():
    block, types = build("5x0e", features="4x0e + 4x1o", correlation=2)
    state = state_for(positions(2, n=1), types)
    empty = {
        k: v[:0] if k != F.EDGE_INDEX else v[:, :0]
        for k, v in state.items()
        if k not in (F.CELL, F.PBC)
    }
    out = block(empty)[F.NODE_FEATURES]
    assert out.shape == (0, 16)


def test_refuses_mixed_multiplicities():
    refusal = MACEInteraction.signature(MACEParams(features="8x0e + 4x1o"), upstream("8x0e"), ctx())
    assert isinstance(refusal, TypeRefusal) and "multiplicity" in refusal.message


def test_refuses_irreps_no_product_reaches():
    """A_k (x) A_k is symmetric, so a pseudo-vector (1o x 1o -> 1e) first appears at order 3."""
    for correlation in (1, 2):
        params = MACEParams(features="4x0e + 4x1e", correlation=correlation)
        refusal = MACEInteraction.signature(params, upstream("8x0e"), ctx())
        assert (
            isinstance(refusal, TypeRefusal)
            and "1e" in refusal.message
            and "correlation" in refusal.hint
        )
    params = MACEParams(features="4x0e + 4x1e", correlation=3)
    assert not isinstance(MACEInteraction.signature(params, upstream("8x0e"), ctx()), TypeRefusal)


def test_refuses_without_edge_harmonics_with_the_fix():
    refusal = MACEInteraction.signature(MACEParams(), upstream("8x0e", l_max=None), ctx())
    assert isinstance(refusal, TypeRefusal) and "embedding.angular.l_max" in refusal.hint


def test_correlation_is_bounded():
    with pytest.raises(ValueError):
        MACEParams(correlation=5)


def cascade(sc, a: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
    """The contraction as e3nn's per-coupling products, order by order (the form the
    dense coupling matrices replace): ``P^nu = TP(P^{nu-1}, A)`` and, per order and
    target, ``sum_p W[z, k, p] P^nu[segment p]``."""
    n, k = a.shape[0], sc.k
    out = [a.new_zeros(n, k, ir.dim) for _, ir in sc.irreps_out]
    product, weights = a, iter(sc.weights)
    for nu, level in enumerate(sc.levels):
        if nu > 0:
            if level.plan is None:
                break
            with exact_constants():
                product = level.plan.tensor_product(shared_weights=True).to(a.dtype)(product, a)
        for t, (_, target) in enumerate(sc.irreps_out):
            slices = [
                sl for sl, (_, ir) in zip(level.irreps.slices(), level.irreps) if ir == target
            ]
            if slices:
                segments = torch.stack(
                    [product[:, sl].reshape(n, k, target.dim) for sl in slices], 1
                )
                out[t] = out[t] + torch.einsum("nkp,npkd->nkd", next(weights)[species], segments)
    return torch.cat([o.reshape(n, -1) for o in out], -1)


@pytest.mark.parametrize(
    ("correlation", "l_max", "out"),
    [(1, 2, "0e + 1o"), (2, 2, "0e + 1o + 2e"), (3, 2, "0e + 1o"), (3, 3, "0e + 1o"),
     (3, 2, "0e + 0o + 1o + 1e + 2e + 2o"), (4, 1, "0e + 1o")],
)  # fmt: skip
def test_contraction_equals_the_per_coupling_products(correlation, l_max, out):
    """The pair form (dense coupling matrices) computes e3nn's uuu products exactly, with
    their gradients (forces) and second derivatives (training on forces)."""
    sc, irreps_a, _ = contraction(correlation, l_max=l_max, out=out)
    a = torch.randn(6, irreps_a.dim, dtype=torch.float64, requires_grad=True)
    species = torch.tensor([0, 1, 1, 0, 1, 0])
    got, expected = sc.pair_form(a, species), cascade(sc, a, species)
    assert (sc.per_coupling_form(a, species) - expected).abs().max() < 1e-12 * float(
        expected.detach().abs().max()
    )
    scale = float(expected.detach().abs().max())
    assert (got - expected).abs().max() < 1e-12 * scale
    probe = torch.randn_like(got)
    (g_got,) = torch.autograd.grad((got * probe).sum(), a, create_graph=True)
    (g_exp,) = torch.autograd.grad((expected * probe).sum(), a, create_graph=True)
    assert (g_got - g_exp).abs().max() < 1e-12 * float(g_exp.detach().abs().max())
    w_got = torch.autograd.grad(g_got.pow(2).sum(), list(sc.weights))
    w_exp = torch.autograd.grad(g_exp.pow(2).sum(), list(sc.weights))
    for x, y in zip(w_got, w_exp):
        assert (x - y).abs().max() < 1e-12 * max(1.0, float(y.abs().max()))


def test_forward_picks_the_pair_form_only_for_small_inputs(monkeypatch):
    import geocompose.nn.interaction.mace_contraction as module

    sc, irreps_a, _ = contraction(3)
    a, species = torch.randn(4, irreps_a.dim, dtype=torch.float64), torch.tensor([0, 1, 1, 0])
    calls = []
    monkeypatch.setattr(sc, "pair_form", lambda *x: calls.append("pair"))
    monkeypatch.setattr(sc, "per_coupling_form", lambda *x: calls.append("per coupling"))
    sc(a, species)
    monkeypatch.setattr(module, "PAIR_FORM_LIMIT", 4 * sc.k * sc.pair_work - 1)
    sc(a, species)
    assert calls == ["pair", "per coupling"]


def test_layer_readout_writes_a_running_sum_of_invariant_energy_terms():
    """``layer_readout``: each layer adds a linear function of its 0e channels to
    ``layer_energy`` (an earlier layer's terms included); the terms are invariant under
    rotations and reflections; without it nothing is written."""
    first, types = build("5x0e", features="4x0e + 4x1o", correlation=2, layer_readout=True)
    assert first.sig.writes[F.LAYER_ENERGY].irreps == o3.Irreps("1x0e")
    assert F.LAYER_ENERGY not in first.sig.reads  # nothing upstream to add to
    state = state_for(positions(1, n=6), types)
    out = first(state)
    torch.testing.assert_close(out[F.LAYER_ENERGY], first.energy_term(out[F.NODE_FEATURES]))
    second_types = {**types, **first.sig.writes}
    torch.manual_seed(1)
    second = MACEInteraction(
        MACEParams(features="4x0e + 4x1o", correlation=2, layer_readout=True), second_types, ctx()
    ).double()
    assert F.LAYER_ENERGY in second.sig.reads
    again = second({**state, **out})
    torch.testing.assert_close(
        again[F.LAYER_ENERGY],
        out[F.LAYER_ENERGY] + second.energy_term(again[F.NODE_FEATURES]),
    )
    for improper in (False, True):
        R = rotation(3, improper)
        moved = first(transform_state(state, types, R))[F.LAYER_ENERGY]
        torch.testing.assert_close(moved, out[F.LAYER_ENERGY], rtol=1e-10, atol=1e-12)
    plain, _ = build("5x0e", features="4x0e + 4x1o", correlation=2)
    assert F.LAYER_ENERGY not in plain.sig.writes and F.LAYER_ENERGY not in plain(state)


def test_layer_readout_without_scalars_is_refused():
    params = MACEParams(features="4x1o", correlation=2, layer_readout=True)
    refusal = MACEInteraction.signature(params, upstream("8x0e"), ctx())
    assert isinstance(refusal, TypeRefusal) and "layer_readout" in refusal.message
