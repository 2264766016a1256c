"""Graph topology: which atom pairs become edges.

Pure functions of a structure, no ``nn.Module``: they run once per structure, in
numpy, and return integer arrays. Only :func:`edge_vectors` is differentiable, so
that forces (w.r.t. positions) and stress (w.r.t. the cell) flow through the
periodic shifts.

Conventions, shared by every builder here:

* An edge is a triple ``(receiver, sender, shift)``; messages flow sender → receiver.
* Its vector points from the receiver to the sender's image::

      vector = positions[sender] - positions[receiver] + shift @ cell   # (3,)

  This is exactly vesin's convention for ``(i, j, S)`` with ``i`` the receiver and
  ``j`` the sender (checked: vesin's ``"D"`` equals ``pos[j] - pos[i] + S @ box``
  to the last bit), so vesin's arrays are used as they are, without negation.
* A pair is an edge when its distance is strictly below the cutoff (vesin's rule).
* Self-pairs with zero shift are never edges; an atom's own periodic images are.
* Edges come sorted by receiver, then sender, then shift (lexicographic): a
  deterministic order, and receiver-sorted scatters are ~4x faster (DESIGN.md §5).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import torch
import vesin

from geocompose.errors import StructureError
from geocompose.nn.graph.edge_order import Pairs, canonical_edges, empty_pairs

__all__ = ["complete_pairs", "edge_index_array", "edge_vectors", "knn_pairs", "radius_pairs"]

# Distances within this relative tolerance of the k-th one count as ties in kNN, for
# float64 coordinates (their round-off is ~1e-16; the margin covers the arithmetic).
KNN_TIE_RTOL = 1e-9
# Coordinates that were rounded to a lower precision (a float32 model's batch) tie
# within KNN_TIE_EPS machine epsilons of that dtype instead (float32: 1.2e-5). Rounding
# moves a coordinate x by up to 6e-8 |x| in float32, and a float32 rotation by a few
# times that, so a shell of tied distances spreads by ~1e-7 (measured: 2.0e-7 on
# primitive bcc/fcc cells over 300 Haar rotations), more for coordinates far larger
# than the distances; at 1e-9 such a shell split and a kNN graph kept 12 of bcc's 14
# tied neighbours (the verifier's float32 check on cgcnn: 0.26).
KNN_TIE_EPS = 100
# kNN searches this much (relative, at least twice the tie tolerance) beyond the radius
# it counts in, so tied neighbours sitting just outside that radius are still candidates.
_SEARCH_MARGIN = 1e-6
_MAX_GROWTHS = 64
# vesin searches kept per thread for reuse, at most this many (cutoff, threads) kinds.
_KEPT_SEARCHES = 4
_searches = threading.local()


def radius_pairs(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> Pairs:
    """All pairs closer than ``cutoff``, periodic images included.

    Args:
        positions: (N, 3) Cartesian positions; need not lie inside the cell.
        cell: (3, 3) lattice vectors as rows. Rows of non-periodic directions are
            ignored (ASE puts vacuum there; a molecule may pass zeros).
        pbc: (3,) bool, periodicity along each cell vector.
        cutoff: radius, > 0 and finite. It may exceed the cell: every image counts.

    Returns:
        ``(receivers, senders, shifts)``: int64 arrays of shapes (E,), (E,), (E, 3),
        sorted by receiver, sender, shift. ``shifts`` is zero along non-periodic
        directions.

    Raises:
        StructureError: on non-finite or ill-shaped input, a non-positive cutoff, or
            degenerate lattice vectors along periodic directions.
    """
    positions, cell, pbc = _check_structure(positions, cell, pbc)
    cutoff = _check_radius(cutoff, "cutoff")
    return _radius_pairs(positions, cell, pbc, cutoff)


def knn_tie_rtol(dtype: torch.dtype) -> float:
    """The kNN tie tolerance for coordinates given in ``dtype``: ``KNN_TIE_RTOL`` for
    float64, ``KNN_TIE_EPS`` machine epsilons for coarser dtypes."""
    return max(KNN_TIE_RTOL, KNN_TIE_EPS * torch.finfo(dtype).eps)


def knn_pairs(
    positions: np.ndarray,
    cell: np.ndarray,
    pbc: np.ndarray,
    k: int,
    cutoff: float | None = None,
    tie_rtol: float = KNN_TIE_RTOL,
) -> Pairs:
    """The ``k`` nearest neighbours of every atom (periodic images included).

    Ties are kept whole: every neighbour whose distance is within a relative
    ``tie_rtol`` (1e-9; see :func:`knn_tie_rtol` for coordinates rounded to float32)
    of the k-th distance is an edge, so an atom may get more
    than ``k`` edges. Peer codes (e.g. ``torch_cluster.knn``) cut ties by index,
    which makes the graph, and hence the model, depend on atom order; here the
    edge set is permutation equivariant. An atom with fewer than ``k`` candidates
    (small molecule, or within ``cutoff``) gets all of them.

    Args:
        positions: (N, 3) Cartesian positions.
        cell: (3, 3) lattice vectors as rows.
        pbc: (3,) bool periodicity.
        k: neighbours per receiver, >= 1.
        cutoff: optional hard limit; no edge is ever this long or longer.
        tie_rtol: relative tolerance of a tie with the k-th distance.

    Returns:
        ``(receivers, senders, shifts)`` as :func:`radius_pairs`, same order.

    Raises:
        StructureError: on bad input, as :func:`radius_pairs`, or ``k < 1``.
    """
    positions, cell, pbc = _check_structure(positions, cell, pbc)
    if not _is_integer(k) or k < 1:
        raise StructureError(f"knn: k must be an integer >= 1, got {k!r}")
    limit = math.inf if cutoff is None else _check_radius(cutoff, "cutoff")
    n = len(positions)
    if n == 0:
        return empty_pairs()
    if not pbc.any():
        # Beyond the point set's diameter every pair is a candidate: growing further
        # cannot help an atom with fewer than k partners (n - 1 < k).
        diameter = float(np.linalg.norm(np.ptp(positions, axis=0)))
        limit = min(limit, 2.0 * diameter + 1.0)

    radius = min(_initial_knn_radius(positions, cell, pbc, k), limit)
    margin = max(_SEARCH_MARGIN, 2.0 * tie_rtol)
    for _ in range(_MAX_GROWTHS):
        final = radius >= limit
        search = limit if final else min(radius * (1.0 + margin), limit)
        receivers, senders, shifts = _radius_pairs(positions, cell, pbc, search)
        dist = _distances(positions, cell, receivers, senders, shifts)  # (E,)
        counted = receivers if final else receivers[dist <= radius]
        if final or np.bincount(counted, minlength=n).min() >= k:
            keep = _within_kth(receivers, dist, n, k, tie_rtol)
            return receivers[keep], senders[keep], shifts[keep]
        radius = min(2.0 * radius, limit)
    # Unreachable for a valid cell (images grow without bound); a guard, not a path.
    raise StructureError(f"knn: could not find {k} neighbours per atom within radius {radius:g}")


def complete_pairs(num_atoms: int) -> Pairs:
    """Every ordered pair ``i != j`` with zero shift: the complete graph.

    Only meaningful for non-periodic structures (a periodic crystal has no finite
    complete graph); memory grows as ``num_atoms**2``.

    Args:
        num_atoms: N >= 0.

    Returns:
        ``(receivers, senders, shifts)`` of shapes (N(N-1),), (N(N-1),), (N(N-1), 3),
        sorted by receiver then sender.
    """
    if not _is_integer(num_atoms) or num_atoms < 0:
        raise StructureError(f"complete graph: num_atoms must be an int >= 0, got {num_atoms!r}")
    n = int(num_atoms)
    grid = np.broadcast_to(np.arange(n, dtype=np.int64), (n, n))  # (N, N), row i = all senders
    off_diagonal = ~np.eye(n, dtype=bool)
    receivers = np.repeat(np.arange(n, dtype=np.int64), max(n - 1, 0))
    senders = grid[off_diagonal]  # row-major, so already sorted by (receiver, sender)
    return receivers, senders, np.zeros((len(senders), 3), dtype=np.int64)


def edge_vectors(
    positions: torch.Tensor,
    cell: torch.Tensor,
    receivers: torch.Tensor | np.ndarray,
    senders: torch.Tensor | np.ndarray,
    shifts: torch.Tensor | np.ndarray,
) -> torch.Tensor:
    """Differentiable edge vectors ``pos[s] - pos[r] + shifts @ cell``.

    Gradients flow to ``positions`` (forces) and ``cell`` (stress: differentiate the
    energy w.r.t. a strain applied to both), never through the integer topology.

    Args:
        positions: (N, 3) float tensor.
        cell: (3, 3) lattice, or (E, 3, 3) one per edge for batches of structures
            (``cell[batch[receivers]]``).
        receivers: (E,) int indices.
        senders: (E,) int indices.
        shifts: (E, 3) integer lattice shifts.

    Returns:
        (E, 3) tensor with ``positions``' dtype and device.
    """
    device, dtype = positions.device, positions.dtype
    receivers = torch.as_tensor(receivers, dtype=torch.long, device=device)
    senders = torch.as_tensor(senders, dtype=torch.long, device=device)
    shifts = torch.as_tensor(shifts, device=device).to(dtype)  # (E, 3)
    if cell.dim() == 3:
        # sum_i n_i cell_i row by row: three broadcast products, where an einsum is a
        # batched matmul of E (1 x 3) @ (3 x 3) products (~30x slower per edge, and it
        # runs three times in a training step: forward, forces, their backward).
        offsets = (shifts.unsqueeze(-1) * cell).sum(dim=1)  # (E, 3)
    else:
        offsets = shifts @ cell  # (E, 3)
    return positions.index_select(0, senders) - positions.index_select(0, receivers) + offsets


# ---------------------------------------------------------------------------------
# internals


def _radius_pairs(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> Pairs:
    n = len(positions)
    if n == 0:
        return empty_pairs()
    # Zero the non-periodic rows: vesin accepts them (it bins by the points' bounding
    # box there) and the result then cannot depend on whatever vacuum vector the
    # user's cell carries. All-False gets an all-zero box, which vesin needs.
    box = np.where(pbc[:, None], cell, 0.0)
    try:
        # vesin's default (0) takes every core unless OMP_NUM_THREADS is set; the caller's
        # torch.set_num_threads is what a user (or a trainer sharing the machine) sets.
        # The half list (each unordered pair once: i < j, or i == j with the shift in
        # one half-space) costs vesin about half the distance tests and writes half
        # the pairs; canonical_edges mirrors each into (j, i, -S). vesin computes a
        # pair's vector as pos[j] - pos[i] + S @ box, which IEEE rounding makes exactly
        # the negative of the mirrored one: the mirrored half list is its full list.
        search = _half_list_search(cutoff, torch.get_num_threads())
        # copy=False: views into vesin's buffers, read once by the sort below, which
        # writes its own arrays (vesin's copies were ~25% of its time at 4M pairs).
        i, j, shifts = search.compute(positions, box, pbc.tolist(), quantities="ijS", copy=False)
    except RuntimeError as err:  # vesin refuses e.g. a box it cannot invert
        raise StructureError(f"neighbour list: vesin refused the structure: {err}") from err
    # vesin gives uint64 indices < n: the same bits read as int64, no conversion pass.
    receivers, senders = _as_int64(i), _as_int64(j)
    self_pair = np.flatnonzero(receivers == senders)  # few: only self-images qualify
    self_pair = self_pair[~shifts[self_pair].any(axis=1)]
    if len(self_pair):  # vesin already drops them; keep the contract explicit
        receivers, senders, shifts = (
            np.delete(x, self_pair, axis=0) for x in (receivers, senders, shifts)
        )
    return canonical_edges(receivers, senders, shifts, n, mirror=True)


def _half_list_search(cutoff: float, threads: int) -> vesin.NeighborList:
    """This thread's vesin half-list search for ``cutoff``, made once and reused.

    A reused search keeps its result buffers (14-28 bytes per edge of the largest
    graph it made: the capacity doubles), so it neither grows them again (a realloc
    and fill per doubling) nor faults their pages in: 5-12 % of vesin's CPU time from
    1k to 100k atoms (measured on a loaded machine). Per thread, since a search's
    buffers belong to one call at a time; the results are views into them
    (``copy=False``), which canonical_edges reads once before returning fresh arrays.
    The oldest beyond _KEPT_SEARCHES is dropped (kNN's growing radii would pile up).
    """
    kept = getattr(_searches, "by_kind", None)
    if kept is None:
        kept = _searches.by_kind = {}
    kind = (cutoff, threads)
    search = kept.pop(kind, None)
    if search is None:
        search = vesin.NeighborList(cutoff=cutoff, full_list=False, n_threads=threads)
    kept[kind] = search  # dicts keep insertion order: the most recent last
    while len(kept) > _KEPT_SEARCHES:
        del kept[next(iter(kept))]
    return search


def _as_int64(index: np.ndarray) -> np.ndarray:
    if index.dtype == np.uint64:
        return index.view(np.int64)
    return index.astype(np.int64)


def edge_index_array(receivers: np.ndarray, senders: np.ndarray) -> np.ndarray:
    """(2, E) int64 ``[senders, receivers]``; no copy when they are already the rows of
    one such array (as :func:`radius_pairs` returns them)."""
    base = senders.base
    if (
        base is not None
        and base is receivers.base
        and base.shape == (2, len(senders))
        and base.dtype == np.int64
        and base.flags.c_contiguous
        and senders.ctypes.data == base.ctypes.data
        and receivers.ctypes.data == base[1].ctypes.data
    ):
        return base
    return np.stack([senders, receivers]).astype(np.int64, copy=False)


def _distances(positions, cell, receivers, senders, shifts) -> np.ndarray:
    # Elementwise, not a BLAS matmul: each distance then depends only on its own
    # pair, bit for bit, so renumbering atoms cannot move a kNN tie.
    vec = positions[senders] - positions[receivers]  # (E, 3)
    for axis in range(3):
        vec = vec + shifts[:, axis : axis + 1] * cell[axis]
    return np.sqrt(vec[:, 0] ** 2 + vec[:, 1] ** 2 + vec[:, 2] ** 2)


def _within_kth(
    receivers: np.ndarray, dist: np.ndarray, n: int, k: int, tie_rtol: float
) -> np.ndarray:
    """Mask of edges no longer than their receiver's k-th distance (ties kept)."""
    if len(receivers) == 0:
        return np.zeros(0, dtype=bool)
    counts = np.bincount(receivers, minlength=n)  # (N,)
    starts = np.cumsum(counts) - counts
    by_distance = dist[np.lexsort((dist, receivers))]  # grouped by receiver, ascending within
    has = counts > 0
    kth = np.full(n, np.inf)
    kth[has] = by_distance[starts[has] + np.minimum(counts[has], k) - 1]
    return dist <= kth[receivers] * (1.0 + tie_rtol)


def _initial_knn_radius(positions, cell, pbc, k) -> float:
    """A first guess that usually holds k neighbours: the sphere of k atoms' volume."""
    extent = np.maximum(np.ptp(positions, axis=0), 1.0)  # (3,) floored: flat molecules
    volume = abs(np.linalg.det(cell)) if pbc.all() else float(np.prod(extent))
    per_atom = volume / len(positions)
    return 1.2 * (3.0 * (k + 1) * per_atom / (4.0 * math.pi)) ** (1.0 / 3.0)


def _check_structure(positions, cell, pbc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise StructureError(f"positions must have shape (N, 3), got {positions.shape}")
    if not np.isfinite(positions).all():
        bad = np.flatnonzero(~np.isfinite(positions).all(axis=1))
        raise StructureError(f"positions of atoms {bad[:10].tolist()} are not finite")
    cell = np.ascontiguousarray(cell, dtype=np.float64)
    if cell.shape != (3, 3):
        raise StructureError(f"cell must have shape (3, 3), got {cell.shape}")
    if not np.isfinite(cell).all():
        raise StructureError("cell is not finite")
    pbc = np.asarray(pbc)
    if pbc.dtype != bool:
        raise StructureError(f"pbc must be booleans, got dtype {pbc.dtype}")
    pbc = np.broadcast_to(pbc, (3,)).copy() if pbc.shape in ((), (1,)) else pbc
    if pbc.shape != (3,):
        raise StructureError(f"pbc must have shape (3,), got {pbc.shape}")
    periodic = cell[pbc]  # (P, 3) rows that define images
    if len(periodic):
        singular = np.linalg.svd(periodic, compute_uv=False)
        if singular[0] == 0.0 or singular[-1] < 1e-10 * singular[0]:
            axes = "".join("abc"[a] for a in np.flatnonzero(pbc))
            raise StructureError(
                f"cell vectors along periodic directions {axes} are zero or linearly "
                f"dependent (singular values {singular.tolist()}); give a proper cell "
                "or mark those directions non-periodic"
            )
    return positions, cell, pbc


def _check_radius(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise StructureError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(value) and value > 0.0):
        raise StructureError(f"{name} must be finite and > 0, got {value!r}")
    return value


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
