"""Local geometric invariants of a graph, to check what a pair claims, numerically.

A model whose layers read only the ``b``-body invariants of each node's neighbourhood
(2: the distances to its neighbours; 3: also the angles between them, as SchNet and
DimeNet's triplets do) computes the same node features for two graphs wherever a node
map preserves the edges and every node's invariants: then the two graphs are
indistinguishable to it at every depth (the invariant geometric WL test cannot
separate them). :func:`equal_under_identity` checks exactly that sufficient condition.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from geocompose.expressivity.pairs import GeometricPair

__all__ = [
    "centre_triples",
    "congruent",
    "equal_under_identity",
    "is_symmetric_under",
    "neighbours",
    "node_invariants",
    "same_point_set",
]

DECIMALS = 9
"""Invariants are compared after rounding to this many decimals (float64 construction
error is ~1e-15; distinct values in the suites differ by more than 1e-3)."""


def neighbours(num_nodes: int, edges: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Undirected adjacency lists."""
    adjacency: list[list[int]] = [[] for _ in range(num_nodes)]
    for i, j in edges:
        adjacency[i].append(j)
        adjacency[j].append(i)
    return adjacency


def centre_triples(positions: np.ndarray, centre: int, around: Sequence[int]) -> list[tuple]:
    """Sorted ``(r_j, r_k, cos theta_jk)`` over ordered neighbour pairs ``j != k`` of a
    centre: the 3-body (distances plus angles) fingerprint of its neighbourhood."""
    triples = []
    for j, k in itertools.permutations(around, 2):
        u, v = positions[j] - positions[centre], positions[k] - positions[centre]
        ru, rv = np.linalg.norm(u), np.linalg.norm(v)
        triples.append(tuple(np.round((ru, rv, float(u @ v) / (ru * rv)), DECIMALS)))
    return sorted(triples)


def node_invariants(positions: np.ndarray, edges, body_order: int) -> list[tuple]:
    """Each node's local invariants up to ``body_order`` (2 or 3), hashable.

    Raises:
        ValueError: a body order other than 2 or 3.
    """
    if body_order not in (2, 3):
        raise ValueError(
            f"local invariants are defined here for body order 2 or 3; got {body_order}"
        )
    adjacency = neighbours(len(positions), edges)
    out = []
    for i, around in enumerate(adjacency):
        distances = tuple(
            sorted(
                np.round([np.linalg.norm(positions[j] - positions[i]) for j in around], DECIMALS)
            )
        )
        if body_order == 2:
            out.append(distances)
        else:
            out.append((distances, tuple(centre_triples(positions, i, around))))
    return out


def equal_under_identity(pair: GeometricPair, body_order: int) -> bool:
    """Whether the identity node map preserves edges and every node's invariants."""
    same_edges = {frozenset(e) for e in pair.edges[0]} == {frozenset(e) for e in pair.edges[1]}
    first, second = (node_invariants(p, e, body_order) for p, e in zip(pair.positions, pair.edges))
    return same_edges and first == second


def same_point_set(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> np.ndarray | None:
    """The permutation ``p`` with ``b[p[i]] == a[i]`` (within ``atol``), or None."""
    if a.shape != b.shape:
        return None
    distance = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)  # (N, N)
    match = distance.argmin(axis=1)
    if len(set(match.tolist())) != len(a) or distance[np.arange(len(a)), match].max() > atol:
        return None
    return match


def is_symmetric_under(
    positions: np.ndarray, edges, rotation: np.ndarray, atol: float = 1e-9
) -> bool:
    """Whether ``rotation`` maps the graph onto itself: points onto points, edges onto edges."""
    match = same_point_set(positions @ rotation.T, positions, atol)
    if match is None:
        return False
    mapped = {frozenset((int(match[i]), int(match[j]))) for i, j in edges}
    return mapped == {frozenset(e) for e in edges}


def congruent(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> bool:
    """Whether some orthogonal map and node map take point set ``a`` onto ``b``.

    Two point sets are congruent exactly when a node map makes their distance matrices
    equal (the Gram matrix of centred points fixes them up to O(3)); the map is found
    by backtracking, pruning on the distances to the nodes already mapped.
    """
    if a.shape != b.shape:
        return False
    da = np.linalg.norm(a[:, None] - a[None], axis=-1)
    db = np.linalg.norm(b[:, None] - b[None], axis=-1)
    n = len(a)
    image: list[int] = []

    def extend() -> bool:
        i = len(image)
        if i == n:
            return True
        for j in range(n):
            if j in image:
                continue
            if all(abs(da[i, k] - db[j, image[k]]) <= atol for k in range(i)):
                image.append(j)
                if extend():
                    return True
                image.pop()
        return False

    return extend()
