"""The geometric graphs of the expressivity suites, built from the paper's definitions.

Joshi, Bodnar, Mathis, Cohen, Liò, "On the Expressive Power of Geometric Graph Neural
Networks" (ICML 2023) test a model on *pairs* of geometric graphs that some class of
models provably cannot tell apart. Each pair here carries its graphs exactly as
defined there: positions in the paper's length units (one unit = one tenth of the
paper's radial cutoff ``r_max = 10``) and an explicit edge list, which the suite
installs as the model's topology (see :mod:`geocompose.expressivity.classifier`).

* :func:`k_chains`: a line of ``k`` nodes 5 apart, plus one end point at each end, at
  distance 5 from its chain end; the two graphs differ only in whether the end points
  lie on opposite sides or on the same side of the chain axis. Every node sees the same
  distances and angles in both graphs, so invariant models cannot separate them at any
  depth; an equivariant model needs ``floor(k/2) + 1`` layers (the geometric WL bound).
* :func:`two_body_pair`: a centre with two neighbours at distance 5, at an angle of
  ``arccos(3/5)`` in one graph and 180 degrees in the other (the paper's running example):
  identical distances, different angles.
* :func:`three_body_pair`: the pair of Pozdnyakov et al., PRL 125, 166001 (2020),
  Fig. 1(b): a centre with four neighbours whose distances *and* centre angles agree as
  multisets, but which are not congruent.
* :func:`rotsym_pair`: an L-fold rotationally symmetric star (a centre and L unit
  spokes in the xy-plane) and the same star turned by ``pi/L`` about z. The two are
  congruent, so only an orientation-sensitive (equivariant) output can separate them,
  and an order-l tensor is blind to the turn when ``l < L``.

The public code's four-body pairs are left out on purpose: both are congruent (the
"chiral" one is its own mirror image turned by 180 degrees about z), so no model
can separate them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PAIRS",
    "GeometricPair",
    "k_chains",
    "rotsym_pair",
    "three_body_pair",
    "two_body_pair",
]

PAPER_CUTOFF = 10.0
"""The radial cutoff of the paper's models, in the units the structures are written in."""


@dataclass(frozen=True)
class GeometricPair:
    """Two geometric graphs with labels 0 and 1 and what is known about them.

    Args:
        name: short identifier (``chain-4``, ``two-body``, ``rotsym-3``).
        positions: the two graphs' ``(N, 3)`` float64 positions in paper units.
        edges: the two graphs' undirected edges as ``(i, j)`` index pairs.
        equal_invariants: body orders ``b`` for which every node's ``b``-body local
            invariants coincide between the graphs under the identity node map
            (2: neighbour distances; 3: also the angles at the node). A model built
            only on those invariants cannot separate the pair at any depth.
        congruent: the two graphs are related by a rotation (and a node map), so only
            an orientation-sensitive output can tell them apart.
        fold: for a rotationally symmetric pair, the order L of its symmetry about z.
        description: one line for tables and docs.
    """

    name: str
    positions: tuple[np.ndarray, np.ndarray]
    edges: tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]
    equal_invariants: tuple[int, ...] = ()
    congruent: bool = False
    fold: int | None = None
    description: str = ""
    labels: tuple[int, int] = field(default=(0, 1))

    @property
    def num_atoms(self) -> int:
        return len(self.positions[0])

    def max_edge_length(self) -> float:
        """Longest edge of either graph (paper units)."""
        return max(
            float(np.linalg.norm(pos[i] - pos[j]))
            for pos, edges in zip(self.positions, self.edges)
            for i, j in edges
        )


def _path(n: int) -> tuple[tuple[int, int], ...]:
    return tuple((i, i + 1) for i in range(n - 1))


def _star(n: int) -> tuple[tuple[int, int], ...]:
    """Node 0 joined to nodes 1..n-1 (a local neighbourhood, as in the paper)."""
    return tuple((0, j) for j in range(1, n))


def k_chains(k: int = 4) -> GeometricPair:
    """The pair of k-chains: ``k + 2`` nodes on a path, told apart by the end points.

    Chain nodes sit at ``(0, 5i, 0)``, ``i = 0..k-1``; the end points at
    ``(-/+4, -3, 0)`` and ``(4, 5(k-1) + 3, 0)`` (both 5 from their chain end); each
    graph is centred on its mean position.

    Raises:
        ValueError: ``k < 2``.
    """
    if k < 2:
        raise ValueError(f"a k-chain needs k >= 2; got k = {k}")
    graphs = []
    for first_x in (-4.0, 4.0):  # label 0: end points on opposite sides; 1: same side
        pos = np.array(
            [[first_x, -3.0, 0.0]]
            + [[0.0, 5.0 * i, 0.0] for i in range(k)]
            + [[4.0, 5.0 * (k - 1) + 3.0, 0.0]]
        )
        graphs.append(pos - pos.mean(axis=0))
    edges = _path(k + 2)
    return GeometricPair(
        name=f"chain-{k}",
        positions=(graphs[0], graphs[1]),
        edges=(edges, edges),
        equal_invariants=(2, 3),
        description=f"{k}-chains: end points on opposite sides vs the same side "
        f"(needs {k // 2 + 1} equivariant layers)",
    )


def two_body_pair() -> GeometricPair:
    """A centre with two neighbours at distance 5: at ``arccos(3/5)`` vs 180 degrees."""
    near = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [3.0, 0.0, 4.0]])
    straight = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [-5.0, 0.0, 0.0]])
    edges = _star(3)
    return GeometricPair(
        name="two-body",
        positions=(near, straight),
        edges=(edges, edges),
        equal_invariants=(2,),
        description="same distances, different angle: needs angles (body order 3) or vectors",
    )


def three_body_pair() -> GeometricPair:
    """Pozdnyakov et al. (2020) Fig. 1(b): equal distances and centre angles.

    Neighbours ``a = (5, 0, 5)``, ``b = (5, 5, 5)``, ``-b_xy = (-5, -5, 5)`` and
    ``c = (0, +/-5, 5)``; only the sign of ``c_y`` differs.
    """
    graphs = []
    for c_y in (5.0, -5.0):
        graphs.append(
            np.array(
                [
                    [0.0, 0.0, 0.0],
                    [5.0, 0.0, 5.0],
                    [5.0, 5.0, 5.0],
                    [-5.0, -5.0, 5.0],
                    [0.0, c_y, 5.0],
                ]
            )
        )
    edges = _star(5)
    return GeometricPair(
        name="three-body",
        positions=(graphs[0], graphs[1]),
        edges=(edges, edges),
        equal_invariants=(2, 3),
        description="same distances and centre angles (Pozdnyakov 2020, Fig. 1b): needs body order 4",
    )


def rotation_z(angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` about z."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotsym_pair(fold: int = 3) -> GeometricPair:
    """An L-fold symmetric star and the same star turned by ``pi/L`` about z.

    The paper turns the star by ``2 pi / (L + j)`` for a random ``j`` in ``1..L``; here
    ``j = L`` (the turn ``pi/L``), which is deterministic and the turn that an order-L
    tensor sees most clearly (its ``m = +/-L`` components change sign).

    Raises:
        ValueError: ``fold < 2``.
    """
    if fold < 2:
        raise ValueError(f"a rotationally symmetric star needs fold >= 2; got {fold}")
    spokes = [rotation_z(2 * math.pi * i / fold) @ np.array([1.0, 0.0, 0.0]) for i in range(fold)]
    star = np.vstack([np.zeros(3), *spokes])
    turned = star @ rotation_z(math.pi / fold).T
    edges = _star(fold + 1)
    return GeometricPair(
        name=f"rotsym-{fold}",
        positions=(star, turned),
        edges=(edges, edges),
        equal_invariants=(2, 3),
        congruent=True,
        fold=fold,
        description=f"{fold}-fold star vs the same star turned by pi/{fold}: needs order-{fold} tensors",
    )


PAIRS = {
    "chain": k_chains,
    "two-body": two_body_pair,
    "three-body": three_body_pair,
    "rotsym": rotsym_pair,
}
"""Constructions by name (``chain`` and ``rotsym`` take ``k`` / ``fold``)."""
