"""The geometric Weisfeiler-Leman tests IGWL and GWL, as exact oracles for the suites' pairs.

Joshi, Bodnar, Mathis, Cohen, Liò, "On the Expressive Power of Geometric Graph Neural
Networks" (ICML 2023) bound what message passing can tell apart by two colour refinement
tests on geometric graphs (positions ``x``, edges, initial colours ``c^(0)`` from the
species; every atom of the suites has the same species):

* **GWL** (geometric WL) keeps geometry across iterations::

      g_i^(t) = (g_i^(t-1), {{ (g_j^(t-1), x_ij) : j in N(i) }}),   c_i^(t) = O(3)-orbit of g_i^(t)

  where every vector nested in ``g_i^(t)`` is moved by *one* common group element. So
  ``g_i^(t)`` is the depth-``t`` computation tree rooted at ``i`` whose edges carry the
  relative vectors ``x_ij = x_j - x_i``; two nodes get the same colour when some
  orthogonal ``Q`` and a tree isomorphism map one tree onto the other.
* **IGWL** (invariant GWL) forgets geometry after each step::

      c_i^(t) = HASH(c_i^(t-1), O(3)-orbit of {{ (c_j^(t-1), x_ij) : j in N(i) }})

  i.e. the same orbit check on depth-1 stars coloured by the previous iteration.

Colours are equivalence classes over the nodes of *both* graphs of a pair; a test
separates the pair at iteration ``t`` when the two graphs' colour multisets differ.
``group=Group.SO3`` restricts the orbits to proper rotations (some blueprints claim only
SO(3), and a structure and its mirror image then differ).

**Decision procedure** (sound and complete up to the tolerance). A tree's points are
graph positions relative to its root, so at most ``n`` distinct points ``P``. A ``Q``
that maps tree A onto tree B maps ``P_A`` onto ``P_B``, so it is fixed, on ``span P_A``
(all that matters), by the images of a maximal linearly independent subset: rank 3
``a, b, c``; rank 2 ``a, b`` and ``±(a × b)``; rank 1 a reflection taking ``a`` to
``a'`` and its composition with a reflection fixing ``a'``; rank 0 the identity. Every
tuple of ``P_B`` with the same Gram matrix gives a candidate; for each, the two trees'
canonical forms (memoised on (graph node, depth), vectors moved by ``Q`` and rounded to
``DECIMALS``) are compared. With ``SO3`` only candidates with ``det Q = +1`` are kept.

>>> from geocompose.expressivity import k_chains
>>> first_separating_iteration(k_chains(4), "gwl", 6), first_separating_iteration(k_chains(4), "igwl", 6)
(3, None)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from geocompose.expressivity.invariants import neighbours
from geocompose.expressivity.pairs import GeometricPair
from geocompose.types.group import Group

__all__ = [
    "DECIMALS",
    "GRAM_ATOL",
    "OracleResult",
    "candidate_maps",
    "colours",
    "first_separating_iteration",
    "gwl_separates",
    "igwl_separates",
    "oracle",
    "separates",
]

Kind = Literal["igwl", "gwl"]

DECIMALS = 6
"""Moved vectors are rounded to this many decimals (paper units: edges of length 1-5,
structures up to ~30 across; float64 error after ``Q`` is ~1e-13, and distinct
coordinates in the suites differ by more than 1e-3)."""
GRAM_ATOL = 1e-6
"""Two Gram-matrix entries (paper units squared) match when they differ by at most this."""


class _Graph:
    """One geometric graph: positions ``(n, 3)``, adjacency lists, initial colours."""

    def __init__(
        self, positions: np.ndarray, edges: Sequence[tuple[int, int]], colours0: Sequence[int]
    ):
        self.x = np.asarray(positions, dtype=np.float64)
        self.adjacency = neighbours(len(self.x), edges)
        self.c0 = list(colours0)

    def ball(self, root: int, depth: int) -> list[int]:
        """Graph nodes within ``depth`` hops of ``root``: the nodes of its depth-``depth`` tree."""
        seen, frontier = {root}, [root]
        for _ in range(depth):
            frontier = [j for i in frontier for j in self.adjacency[i] if j not in seen]
            seen.update(frontier)
        return sorted(seen)


def _key(vector: np.ndarray) -> tuple[float, ...]:
    """A rounded, hashable vector (``+ 0.0`` folds ``-0.0`` into ``0.0``)."""
    return tuple(float(v) + 0.0 for v in np.round(vector, DECIMALS))


def _distinct(points: np.ndarray) -> np.ndarray:
    """The distinct points (after rounding), ``(m, 3)``."""
    unique = {_key(p): p for p in points}
    return np.array(list(unique.values())).reshape(-1, 3)


def _independent(points: np.ndarray) -> list[np.ndarray]:
    """A maximal linearly independent subset, picked greedily."""
    basis: list[np.ndarray] = []
    for p in points:
        trial = np.array([*basis, p])
        if np.linalg.matrix_rank(trial, tol=1e-8) > len(basis):
            basis.append(p)
        if len(basis) == 3:
            break
    return basis


def _reflection(normal: np.ndarray) -> np.ndarray:
    """``I - 2 n n^T / |n|^2``: the reflection across the plane normal to ``normal``."""
    return np.eye(3) - 2.0 * np.outer(normal, normal) / float(normal @ normal)


def _perpendicular(v: np.ndarray) -> np.ndarray:
    """Any nonzero vector perpendicular to ``v``."""
    axis = np.eye(3)[int(np.argmin(np.abs(v)))]
    return np.cross(v, axis)


def candidate_maps(a: np.ndarray, b: np.ndarray, group: Group = Group.O3) -> Iterator[np.ndarray]:
    """Every orthogonal ``Q`` (one per distinct action on ``span a``) that may map the
    point set ``a`` ``(m, 3)`` onto ``b`` ``(m', 3)``: the images of a basis of ``a``
    run over the tuples of ``b`` with the same Gram matrix. ``Group.SO3``: proper only."""
    a, b = _distinct(a), _distinct(b)
    basis = _independent(a)
    proper = group == Group.SO3
    if not basis:
        yield np.eye(3)
        return
    gram = np.array([[u @ v for v in basis] for u in basis])
    norms = np.einsum("ij,ij->i", b, b)
    options = [
        [q for q, n in zip(b, norms) if abs(n - gram[i, i]) <= GRAM_ATOL] for i in range(len(basis))
    ]
    for images in itertools.product(*options):
        if any(
            abs(images[i] @ images[j] - gram[i, j]) > GRAM_ATOL
            for i in range(len(basis))
            for j in range(i)
        ):
            continue
        if len(basis) == 3:
            maps = [np.column_stack(images) @ np.linalg.inv(np.column_stack(basis))]
        elif len(basis) == 2:
            source = np.column_stack([*basis, np.cross(*basis)])
            inverse = np.linalg.inv(source)
            maps = [
                np.column_stack([*images, s * np.cross(*images)]) @ inverse for s in (1.0, -1.0)
            ]
        else:
            (u,), (v,) = basis, images
            first = np.eye(3) if np.allclose(u, v, atol=1e-12) else _reflection(u - v)
            maps = [first, _reflection(_perpendicular(v)) @ first]  # same action on u; det -1, +1
        for q in maps:
            if not np.allclose(q @ q.T, np.eye(3), atol=1e-8):
                continue  # Gram matched within tolerance only; not a true isometry
            if proper and np.linalg.det(q) < 0:
                continue
            yield q


class _Interner:
    """Canonical forms → small integers, shared by every tree compared in one run (so
    equal ids mean equal rooted, vector-labelled trees)."""

    def __init__(self):
        self.ids: dict[tuple, int] = {}

    def __call__(self, form: tuple) -> int:
        return self.ids.setdefault(form, len(self.ids))


def _tree_id(
    graph: _Graph, q: np.ndarray, root: int, depth: int, intern: _Interner, memo: dict
) -> int:
    """Canonical id of the depth-``depth`` GWL tree at ``root`` with vectors moved by ``q``.

    ``id(i, 0) = c0(i)``; ``id(i, t) = [id(i, t-1), sorted {(id(j, t-1), round(q x_ij))}]``,
    memoised on ``(i, t)`` in ``memo`` (one memo per graph and ``q``).
    """
    if (root, depth) in memo:
        return memo[(root, depth)]
    if depth == 0:
        value = intern(("c0", graph.c0[root]))
    else:
        children = sorted(
            (_tree_id(graph, q, j, depth - 1, intern, memo), _key(q @ (graph.x[j] - graph.x[root])))
            for j in graph.adjacency[root]
        )
        value = intern((_tree_id(graph, q, root, depth - 1, intern, memo), tuple(children)))
    memo[(root, depth)] = value
    return value


def _star_form(graph: _Graph, q: np.ndarray, node: int, previous: Sequence[int]) -> tuple:
    """The multiset ``{(c_j, round(q x_ij))}`` of a node's neighbours, sorted."""
    return tuple(
        sorted((previous[j], _key(q @ (graph.x[j] - graph.x[node]))) for j in graph.adjacency[node])
    )


def _points(graph: _Graph, nodes: Sequence[int], root: int) -> np.ndarray:
    return np.array([graph.x[j] - graph.x[root] for j in nodes]).reshape(-1, 3)


class _Refinement:
    """Colour refinement over the nodes of both graphs of a pair (union by orbit check)."""

    def __init__(self, pair: GeometricPair, group: Group, species=None):
        species = species or [np.zeros(len(p), dtype=int) for p in pair.positions]
        self.graphs = [_Graph(p, e, s) for p, e, s in zip(pair.positions, pair.edges, species)]
        self.nodes = [(g, i) for g, graph in enumerate(self.graphs) for i in range(len(graph.x))]
        self.group = group
        self.intern = _Interner()
        self.identity_memo: list[dict] = [{} for _ in self.graphs]

    def _gwl_equivalent(self, first: tuple[int, int], second: tuple[int, int], depth: int) -> bool:
        (ga, i), (gb, j) = first, second
        a, b = self.graphs[ga], self.graphs[gb]
        target = _tree_id(b, np.eye(3), j, depth, self.intern, self.identity_memo[gb])
        pa, pb = _points(a, a.ball(i, depth), i), _points(b, b.ball(j, depth), j)
        if len(_distinct(pa)) != len(_distinct(pb)):
            return False
        return any(
            _tree_id(a, q, i, depth, self.intern, {}) == target
            for q in candidate_maps(pa, pb, self.group)
        )

    def _igwl_equivalent(
        self, first: tuple[int, int], second: tuple[int, int], previous: dict
    ) -> bool:
        (ga, i), (gb, j) = first, second
        a, b = self.graphs[ga], self.graphs[gb]
        if previous[first] != previous[second] or len(a.adjacency[i]) != len(b.adjacency[j]):
            return False
        prev_a = [previous[(ga, k)] for k in range(len(a.x))]
        prev_b = [previous[(gb, k)] for k in range(len(b.x))]
        target = _star_form(b, np.eye(3), j, prev_b)
        pa, pb = _points(a, a.adjacency[i], i), _points(b, b.adjacency[j], j)
        return any(
            _star_form(a, q, i, prev_a) == target for q in candidate_maps(pa, pb, self.group)
        )

    def _classes(self, equivalent) -> dict[tuple[int, int], int]:
        """Colour ids: each node joins the first class whose representative it matches
        (the relation is an orbit relation, hence an equivalence)."""
        representatives: list[tuple[int, int]] = []
        colour = {}
        for node in self.nodes:
            for index, rep in enumerate(representatives):
                if equivalent(rep, node):
                    colour[node] = index
                    break
            else:
                colour[node] = len(representatives)
                representatives.append(node)
        return colour

    def run(self, kind: Kind, iterations: int) -> Iterator[dict[tuple[int, int], int]]:
        """Colourings at iterations ``0..iterations``."""
        colour = self._classes(
            lambda u, v: self.graphs[u[0]].c0[u[1]] == self.graphs[v[0]].c0[v[1]]
        )
        yield colour
        for t in range(1, iterations + 1):
            if kind == "gwl":
                colour = self._classes(lambda u, v, t=t: self._gwl_equivalent(u, v, t))
            elif kind == "igwl":
                colour = self._classes(
                    lambda u, v, previous=colour: self._igwl_equivalent(u, v, previous)
                )
            else:
                raise ValueError(f"unknown test {kind!r}; choose igwl or gwl")
            yield colour


def colours(
    pair: GeometricPair, kind: Kind, iterations: int, group: Group = Group.O3, species=None
) -> list[tuple[list[int], list[int]]]:
    """Both graphs' node colours at iterations ``0..iterations`` (ids shared by the two
    graphs within an iteration).

    Args:
        pair: the two graphs.
        kind: ``"igwl"`` or ``"gwl"``.
        iterations: how many refinement steps.
        group: ``Group.O3`` (orbits under rotations and reflections) or ``Group.SO3``.
        species: initial colours per graph; all equal when None (as in the suites).
    """
    refinement = _Refinement(pair, group, species)
    out = []
    for colour in refinement.run(kind, iterations):
        out.append(
            tuple(
                [colour[(g, i)] for i in range(len(graph.x))]
                for g, graph in enumerate(refinement.graphs)
            )
        )
    return out


def _differ(colouring: tuple[list[int], list[int]]) -> bool:
    return sorted(colouring[0]) != sorted(colouring[1])


def first_separating_iteration(
    pair: GeometricPair, kind: Kind, max_iterations: int, group: Group = Group.O3
) -> int | None:
    """The first iteration ``t <= max_iterations`` at which the two graphs' colour
    multisets differ, or None."""
    for t, colouring in enumerate(colours(pair, kind, max_iterations, group)):
        if _differ(colouring):
            return t
    return None


def separates(pair: GeometricPair, kind: Kind, iterations: int, group: Group = Group.O3) -> bool:
    """Whether the test tells the pair apart within ``iterations`` steps (colours only
    refine, so this is "at iteration ``iterations``")."""
    return first_separating_iteration(pair, kind, iterations, group) is not None


def gwl_separates(pair: GeometricPair, iterations: int, group: Group = Group.O3) -> bool:
    return separates(pair, "gwl", iterations, group)


def igwl_separates(pair: GeometricPair, iterations: int, group: Group = Group.O3) -> bool:
    return separates(pair, "igwl", iterations, group)


@dataclass(frozen=True)
class OracleResult:
    """An oracle's verdict on one (pair, iterations) cell: 100 when it separates, else 50
    (the accuracy an ideal model bounded by the test could reach)."""

    kind: str
    iterations: int
    first: int | None

    @property
    def separated(self) -> bool:
        return self.first is not None and self.first <= self.iterations

    @property
    def accuracy(self) -> float:
        return 100.0 if self.separated else 50.0

    @property
    def std(self) -> float:
        return 0.0

    def cell(self) -> str:
        return f"{self.accuracy:.0f}"


def oracle(
    pair: GeometricPair, kind: Kind, layers: Sequence[int], group: Group = Group.O3
) -> list[OracleResult]:
    """One :class:`OracleResult` per layer count (one refinement run up to the largest)."""
    first = first_separating_iteration(pair, kind, max(layers), group)
    return [OracleResult(kind.upper(), depth, first) for depth in layers]
