"""IGWL and GWL oracles: the paper's facts about the suites, and the invariances they must have."""

from __future__ import annotations

import numpy as np
import pytest

from geocompose.expressivity.pairs import (
    GeometricPair,
    k_chains,
    rotsym_pair,
    three_body_pair,
    two_body_pair,
)
from geocompose.expressivity.wl import (
    candidate_maps,
    colours,
    first_separating_iteration,
    gwl_separates,
    igwl_separates,
    oracle,
)
from geocompose.types.group import Group


def _orthogonal(seed: int, det: float) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.sign(np.linalg.det(q)) != det:
        q[:, 0] = -q[:, 0]
    return q


def _moved(positions, edges, q, perm, shift):
    """The same graph turned by ``q``, shifted, and with node ``perm[i]`` moved to ``i``."""
    where = np.argsort(perm)
    return positions[perm] @ q.T + shift, tuple((int(where[i]), int(where[j])) for i, j in edges)


def _pair(a, edges_a, b, edges_b, name="test") -> GeometricPair:
    return GeometricPair(name=name, positions=(a, b), edges=(tuple(edges_a), tuple(edges_b)))


def _chiral() -> GeometricPair:
    """A centre with three neighbours at distinct distances, and its mirror image."""
    star = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.5, 0.5, 3.0]])
    edges = ((0, 1), (0, 2), (0, 3))
    return _pair(star, edges, star * np.array([-1.0, 1.0, 1.0]), edges, "chiral")


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_gwl_separates_k_chains_from_floor_k_half_plus_one_iterations_and_not_before(k):
    pair = k_chains(k)
    assert first_separating_iteration(pair, "gwl", k + 2) == k // 2 + 1
    assert not gwl_separates(pair, k // 2)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_igwl_never_separates_k_chains(k):
    assert first_separating_iteration(k_chains(k), "igwl", 6 if k == 4 else 4) is None


def test_gwl_separates_a_non_congruent_pair_that_igwl_cannot():
    # The k-chains are the paper's example. The two-body pair is *not* one: IGWL's orbit
    # of a whole neighbourhood sees the angle at the centre (only 2-body IGWL is blind).
    pair = k_chains(4)
    assert gwl_separates(pair, 3) and not igwl_separates(pair, 6)
    assert first_separating_iteration(two_body_pair(), "igwl", 2) == 1
    assert first_separating_iteration(three_body_pair(), "igwl", 2) == 1


@pytest.mark.parametrize("kind", ["igwl", "gwl"])
def test_no_separation_of_a_graph_and_its_rotated_reflected_permuted_copy(kind):
    base = three_body_pair()
    positions = np.vstack(
        [base.positions[0], [[2.0, -1.0, 7.0]]]
    )  # one more node: a path off the star
    edges = (*base.edges[0], (4, 5))
    q = _orthogonal(3, det=-1.0)
    perm = np.random.default_rng(3).permutation(len(positions))
    moved, moved_edges = _moved(positions, edges, q, perm, shift=np.array([1.0, -2.0, 0.5]))
    assert first_separating_iteration(_pair(positions, edges, moved, moved_edges), kind, 4) is None


@pytest.mark.parametrize("kind", ["igwl", "gwl"])
def test_so3_mode_separates_a_mirror_image_that_o3_mode_cannot(kind):
    pair = _chiral()
    assert first_separating_iteration(pair, kind, 3, Group.O3) is None
    assert first_separating_iteration(pair, kind, 3, Group.SO3) == 1


def test_so3_mode_does_not_separate_a_proper_rotation():
    a = _chiral().positions[0]
    edges = _chiral().edges[0]
    b, b_edges = _moved(a, edges, _orthogonal(5, det=1.0), np.array([2, 0, 3, 1]), np.zeros(3))
    assert not gwl_separates(_pair(a, edges, b, b_edges), 3, Group.SO3)


def test_colours_follow_the_nodes_under_relabelling():
    pair = k_chains(4)
    perm = np.random.default_rng(0).permutation(pair.num_atoms)
    moved, moved_edges = _moved(pair.positions[1], pair.edges[1], np.eye(3), perm, np.zeros(3))
    relabelled = _pair(pair.positions[0], pair.edges[0], moved, moved_edges)
    for kind in ("igwl", "gwl"):
        original, permuted = colours(pair, kind, 4), colours(relabelled, kind, 4)
        for (a0, a1), (b0, b1) in zip(original, permuted):
            # graph 1's node perm[i] is now node i: the same partition of the nodes of both
            # graphs, up to renaming the colour ids
            before, after = a0 + [a1[p] for p in perm], b0 + b1
            renaming = dict(zip(before, after))
            assert [renaming[c] for c in before] == after and len(set(renaming.values())) == len(
                renaming
            )
        assert first_separating_iteration(relabelled, kind, 4) == first_separating_iteration(
            pair, kind, 4
        )


def test_candidate_maps_contain_the_true_map_for_every_rank():
    rng = np.random.default_rng(1)
    for points in (
        rng.normal(size=(4, 3)),
        np.array([[1.0, 0, 0], [0.3, 2.0, 0]]),
        np.array([[0.0, 0, 2.0]]),
    ):
        q = _orthogonal(7, det=-1.0)
        images = (points @ q.T)[::-1]
        assert any(
            np.allclose(c @ points.T, q @ points.T, atol=1e-9)
            for c in candidate_maps(points, images)
        )


def test_symmetric_stars_are_invisible_to_both_tests():
    for fold in (2, 5):
        for kind in ("igwl", "gwl"):
            assert first_separating_iteration(rotsym_pair(fold), kind, 2) is None


def test_oracle_cells():
    cells = [r.cell() for r in oracle(k_chains(4), "gwl", [1, 2, 3, 4])]
    assert cells == ["50", "50", "100", "100"]
