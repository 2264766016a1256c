"""The quick mode: at random init, which blocks give the two graphs of a pair different
features? The expected pattern is the paper's, by body order, depth and tensor order."""

from __future__ import annotations

import pytest
from expressivity_cases import separation

from geocompose.expressivity import Head, k_chains, rotsym_pair, three_body_pair, two_body_pair
from geocompose.expressivity.protocol import NOISE_RATIO, Distinguished


def assert_not_separated(result: Distinguished):
    """Not separated in any seed: features agree to float64 noise (~1e-12 or better)."""
    assert not any(result.separated), result
    assert max(result.relative_gaps) < 1e-12, result


def assert_separated(result: Distinguished):
    assert all(result.separated), result


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_schnet_cannot_separate_the_two_body_pair_at_any_depth(layers):
    assert_not_separated(separation("schnet", two_body_pair(), layers))


@pytest.mark.parametrize("name", ["dimenet_pp", "painn", "mace2"])
def test_angles_or_vectors_separate_the_two_body_pair_in_one_layer(name):
    assert_separated(separation(name, two_body_pair(), 1))


def test_three_body_pair_needs_correlation_three():
    """MACE's correlation knob is its body order: correlation 2 (distances and angles
    around a centre) gives bit-identical features for Pozdnyakov's pair, 3 separates it."""
    exact = separation("mace2", three_body_pair(), 1)
    assert_not_separated(exact)
    assert max(exact.gaps) == 0.0
    assert_separated(separation("mace3", three_body_pair(), 1))


def test_k_chains_need_floor_k_half_plus_one_equivariant_layers():
    """Invariant SchNet never separates 4-chains; PaiNN does from 3 layers (the geometric
    WL bound, floor(4/2) + 1), not before; frame-averaged FAENet from the first layer."""
    chain = k_chains(4)
    for layers in (1, 3, 4):
        assert_not_separated(separation("schnet", chain, layers))
    for layers in (1, 2):
        assert_not_separated(separation("painn", chain, layers))
    assert_separated(separation("painn", chain, 3))
    assert_separated(separation("faenet", chain, 1))


def test_rotsym_needs_tensors_of_order_at_least_the_fold():
    """Features up to l = 2 tell the turn of a 2-fold star, not of a 3-fold one; l = 1
    (PaiNN's vectors) tells neither."""
    assert_separated(separation("tfn", rotsym_pair(2), 1, Head.ORIENTATION))
    assert_not_separated(separation("tfn", rotsym_pair(3), 1, Head.ORIENTATION))
    assert_not_separated(separation("painn", rotsym_pair(2), 1, Head.ORIENTATION))


def test_cells_and_noise_floor():
    """The verdict is relative to the measured noise: a gap must beat it 100 times."""
    result = Distinguished(gaps=[1e-10, 0.0], noise=[1e-15, 1e-15], scales=[1.0, 1.0])
    assert result.separated == [True, False] and result.cell() == "1/2 ✓"
    assert result.accuracy == 75.0
    near = Distinguished(gaps=[3e-14], noise=[1e-15], scales=[1.0])
    assert near.ratios[0] == pytest.approx(30.0) and near.cell().startswith("~")
    assert Distinguished([0.0], [0.0], [1.0]).cell() == "✗ =0"
    # The floor never drops below a few ulps of the features' size.
    assert Distinguished([1e-14], [0.0], [100.0]).separated == [False]
    assert NOISE_RATIO == 100.0
