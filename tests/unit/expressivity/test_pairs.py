"""The constructions are what the paper says they are, checked numerically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geocompose.expressivity import (
    equal_under_identity,
    is_symmetric_under,
    k_chains,
    node_invariants,
    rotsym_pair,
    three_body_pair,
    two_body_pair,
)
from geocompose.expressivity.invariants import centre_triples, congruent, same_point_set
from geocompose.expressivity.pairs import rotation_z


def sorted_distances(positions: np.ndarray) -> np.ndarray:
    """All pairwise distances, sorted."""
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    return np.sort(d[np.triu_indices(len(positions), 1)])


@pytest.mark.parametrize("k", [2, 3, 4, 5, 8])
def test_k_chains_have_identical_local_distances_and_angles(k):
    pair = k_chains(k)
    assert pair.num_atoms == k + 2
    assert len(pair.edges[0]) == k + 1  # a path
    for pos, edges in zip(pair.positions, pair.edges):
        lengths = [np.linalg.norm(pos[i] - pos[j]) for i, j in edges]
        np.testing.assert_allclose(lengths, 5.0, atol=1e-12)  # every edge has length 5
        np.testing.assert_allclose(pos.mean(axis=0), 0.0, atol=1e-12)  # centred
    # The distance multiset of every node, and its angles, agree node by node.
    assert equal_under_identity(pair, 2)
    assert equal_under_identity(pair, 3)
    # ...yet the graphs are different: the end points are 8 apart sideways in one only.
    assert not congruent(*pair.positions)
    assert abs(pair.positions[0][0, 0] - pair.positions[0][-1, 0]) == pytest.approx(8.0)
    assert abs(pair.positions[1][0, 0] - pair.positions[1][-1, 0]) == pytest.approx(0.0, abs=1e-12)


def test_k_chains_refuse_k_below_two():
    with pytest.raises(ValueError, match="k >= 2"):
        k_chains(1)


def test_two_body_pair_equal_distances_different_angles():
    pair = two_body_pair()
    assert equal_under_identity(pair, 2)
    assert not equal_under_identity(pair, 3)  # the angle at the centre differs
    centre = [centre_triples(p, 0, [1, 2]) for p in pair.positions]
    assert centre[0][0][2] == pytest.approx(3 / 5)  # cos of the paper's angle
    assert centre[1][0][2] == pytest.approx(-1.0)  # a straight line
    assert not congruent(*pair.positions)


def test_three_body_pair_equal_distances_and_centre_angles_but_not_congruent():
    pair = three_body_pair()
    assert equal_under_identity(pair, 2)
    assert equal_under_identity(pair, 3)
    first, second = (centre_triples(p, 0, [1, 2, 3, 4]) for p in pair.positions)
    assert first == second and len(first) == 12  # all ordered neighbour pairs
    # Different shapes: the full distance multisets differ (b to c is 5 in one, ~11.2 in the other).
    assert not congruent(*pair.positions)
    # Even the distances between *all* points agree as multisets (the pair is homometric):
    # only how they are arranged differs.
    np.testing.assert_allclose(*(sorted_distances(p) for p in pair.positions), atol=1e-12)


def test_congruence_check():
    """Turned and mirrored copies (with shuffled atoms) are congruent; a moved atom is not."""
    pos = three_body_pair().positions[0]
    shuffled = (pos @ rotation_z(0.3).T * np.array([1.0, -1.0, 1.0]))[[2, 0, 4, 1, 3]]
    assert congruent(pos, shuffled)
    moved = pos.copy()
    moved[1, 0] += 0.1
    assert not congruent(pos, moved)


def test_invariants_checker_can_fail():
    """A chain with one end point moved no longer matches: the checker is not vacuous."""
    pair = k_chains(4)
    moved = pair.positions[1].copy()
    moved[0] += [0.5, 0.0, 0.0]
    changed = type(pair)(pair.name, (pair.positions[0], moved), pair.edges)
    assert not equal_under_identity(changed, 2)
    with pytest.raises(ValueError, match="body order 2 or 3"):
        node_invariants(moved, pair.edges[0], 4)


@pytest.mark.parametrize("fold", [2, 3, 5, 10])
def test_rotsym_pair_is_fold_symmetric_and_turned(fold):
    pair = rotsym_pair(fold)
    star, turned = pair.positions
    edges = pair.edges[0]
    assert pair.fold == fold and pair.num_atoms == fold + 1
    np.testing.assert_allclose(np.linalg.norm(star[1:], axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(star[:, 2], 0.0, atol=1e-12)  # planar, in xy
    # L-fold: the turn by 2 pi / L maps the star onto itself; no smaller turn does.
    assert is_symmetric_under(star, edges, rotation_z(2 * math.pi / fold))
    assert not is_symmetric_under(star, edges, rotation_z(math.pi / fold))
    for divisor in range(fold + 1, 2 * fold + 1):
        assert not is_symmetric_under(star, edges, rotation_z(2 * math.pi / divisor))
    # The second graph is the first turned by pi / L: congruent, but not the same points.
    assert same_point_set(star @ rotation_z(math.pi / fold).T, turned) is not None
    assert same_point_set(star, turned) is None
    assert pair.congruent and congruent(star, turned) and equal_under_identity(pair, 3)


def test_rotsym_pair_refuses_fold_below_two():
    with pytest.raises(ValueError, match="fold >= 2"):
        rotsym_pair(1)
