"""Neighbour lists against an independent numpy brute force."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import vesin
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from geocompose.errors import StructureError
from geocompose.nn.graph import edge_order, neighbours
from geocompose.nn.graph.neighbours import (
    KNN_TIE_RTOL,
    complete_pairs,
    edge_vectors,
    knn_pairs,
    radius_pairs,
)

SETTINGS = settings(max_examples=30, deadline=None)


# --------------------------------------------------------------------------- brute force


def brute_images(positions, cell, pbc, reach):
    """Every (receiver, sender, shift) with |vector| < reach, and its distance.

    The shift range comes from the pseudo-inverse of the periodic rows: a vector of
    length <= reach + (largest separation of two atoms) has integer coefficients
    bounded by that length times the norm of the pseudo-inverse's column.
    """
    n = len(positions)
    ranges = [[0], [0], [0]]
    periodic = np.flatnonzero(pbc)
    if len(periodic):
        pinv = np.linalg.pinv(cell[periodic])  # (3, P)
        span = np.linalg.norm(np.ptp(positions, axis=0)) if n else 0.0
        for col, axis in enumerate(periodic):
            m = int(np.ceil((reach + span) * np.linalg.norm(pinv[:, col]))) + 1
            ranges[axis] = list(range(-m, m + 1))
    shifts = np.array(list(itertools.product(*ranges)), dtype=np.int64)  # (M, 3)
    out = {}
    for r in range(n):
        for s in range(n):
            vec = positions[s] - positions[r] + shifts @ cell  # (M, 3)
            dist = np.linalg.norm(vec, axis=1)
            for shift, d in zip(shifts, dist):
                if d < reach and not (r == s and not shift.any()):
                    out[(r, s, *shift.tolist())] = d
    return out


def as_set(pairs):
    receivers, senders, shifts = pairs
    return {(int(r), int(s), *map(int, S)) for r, s, S in zip(receivers, senders, shifts)}


def distances(positions, cell, pairs):
    vec = edge_vectors(torch.as_tensor(positions), torch.as_tensor(cell), *pairs)
    return vec.norm(dim=1).numpy()


def assert_canonical(pairs):
    receivers, senders, shifts = pairs
    assert receivers.dtype == senders.dtype == shifts.dtype == np.int64
    assert shifts.shape == (len(receivers), 3)
    keys = np.column_stack([receivers, senders, shifts])
    order = np.lexsort(keys.T[::-1])
    assert (order == np.arange(len(order))).all(), "edges not sorted by (r, s, shift)"
    assert len({tuple(k) for k in keys.tolist()}) == len(keys), "duplicate edges"


@st.composite
def structures(draw, max_atoms=6):
    """Random triclinic cells, positions partly outside the cell, random pbc."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(1, max_atoms))
    pbc = np.array(draw(st.lists(st.booleans(), min_size=3, max_size=3)))
    scale = draw(st.floats(1.0, 4.0))
    rng = np.random.default_rng(seed)
    cell = scale * (np.eye(3) + 0.4 * rng.uniform(-1, 1, (3, 3)))
    assume(abs(np.linalg.det(cell)) > 0.2 * scale**3)
    positions = rng.uniform(-0.5, 1.5, (n, 3)) @ cell
    return positions, cell, pbc, scale


# --------------------------------------------------------------------------- radius


@SETTINGS
@given(structures(), st.floats(0.3, 2.5))
def test_radius_matches_brute_force(structure, relative_cutoff):
    positions, cell, pbc, scale = structure
    cutoff = relative_cutoff * scale  # up to 2.5 cell lengths: many images
    expected = brute_images(positions, cell, pbc, cutoff * (1 + 1e-6))
    # A pair on the cutoff's edge may fall either way; random draws never hit one.
    assume(not any(abs(d - cutoff) < 1e-9 * cutoff for d in expected.values()))
    expected = {k: d for k, d in expected.items() if d < cutoff}
    pairs = radius_pairs(positions, cell, pbc, cutoff)
    assert_canonical(pairs)
    assert as_set(pairs) == set(expected)
    got = distances(positions, cell, pairs)
    keys = np.column_stack([pairs[0], pairs[1], pairs[2]]).tolist()
    want = np.array([expected[tuple(key)] for key in keys])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    assert not pairs[2][:, ~pbc].any(), "shift along a non-periodic direction"


@SETTINGS
@given(structures(max_atoms=5), st.floats(0.3, 2.0), st.randoms(use_true_random=False))
def test_radius_is_permutation_equivariant(structure, relative_cutoff, rnd):
    positions, cell, pbc, scale = structure
    perm = list(range(len(positions)))
    rnd.shuffle(perm)
    perm = np.array(perm)  # new atom a is old atom perm[a]
    inverse = np.argsort(perm)
    ours = radius_pairs(positions, cell, pbc, relative_cutoff * scale)
    theirs = radius_pairs(positions[perm], cell, pbc, relative_cutoff * scale)
    mapped = {(int(inverse[r]), int(inverse[s]), *S) for r, s, *S in as_set(ours)}
    assert mapped == as_set(theirs)


def full_list_reference(positions, cell, pbc, cutoff, threads):
    """vesin's full list, ordered by a plain lexsort: what radius_pairs gave before it
    mirrored vesin's half list, and independent of its packed keys."""
    box = np.where(pbc[:, None], cell, 0.0)
    search = vesin.NeighborList(cutoff=cutoff, full_list=True, n_threads=threads)
    i, j, shifts = search.compute(positions, box, pbc.tolist(), quantities="ijS")
    i, j, shifts = i.astype(np.int64), j.astype(np.int64), shifts.astype(np.int64)
    keep = (i != j) | shifts.any(axis=1)
    i, j, shifts = i[keep], j[keep], shifts[keep]
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], j, i))
    return i[order], j[order], shifts[order]


@settings(max_examples=60, deadline=None)
@given(structures(max_atoms=40), st.floats(0.3, 3.0), st.sampled_from([1, 2]))
def test_radius_equals_the_sorted_full_list_element_for_element(
    structure, relative_cutoff, threads
):
    # Up to 3 cell lengths (self-images, one pair through several shifts), open,
    # slab and periodic boundaries, triclinic cells, 1 and 2 vesin threads.
    positions, cell, pbc, scale = structure
    cutoff = relative_cutoff * scale
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        ours = radius_pairs(positions, cell, pbc, cutoff)
    finally:
        torch.set_num_threads(previous)
    for got, want in zip(ours, full_list_reference(positions, cell, pbc, cutoff, threads)):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("sort", ["radix", "timsort"])
def test_radius_equals_the_sorted_full_list_on_a_supercell(monkeypatch, sort):
    # Enough atoms (2,048) for vesin's cell list to bin them into many cells; still
    # few enough for the radix sort of small structures, unless it is switched off.
    if sort == "timsort":
        monkeypatch.setattr(edge_order, "_RADIX_BITS", 0)
    rng = np.random.default_rng(7)
    cell = 3.61 * 8 * (np.eye(3) + 0.1 * rng.uniform(-1, 1, (3, 3)))
    positions = rng.uniform(0, 1, (2048, 3)) @ cell
    for pbc in (np.array([True] * 3), np.array([True, False, True]), np.zeros(3, bool)):
        ours = radius_pairs(positions, cell, pbc, 4.0)
        assert len(ours[0]) > 10_000
        for got, want in zip(ours, full_list_reference(positions, cell, pbc, 4.0, 1)):
            np.testing.assert_array_equal(got, want)


def test_shift_sign_convention():
    # Atom 0 at x=0.5, atom 1 at x=9.5 in a 10 Å box: nearest image of 1 seen from
    # 0 is one cell back, so the edge (receiver 0, sender 1) has shift -a.
    cell = 10.0 * np.eye(3)
    positions = np.array([[0.5, 5.0, 5.0], [9.5, 5.0, 5.0]])
    receivers, senders, shifts = radius_pairs(positions, cell, np.array([True] * 3), 2.0)
    assert receivers.tolist() == [0, 1] and senders.tolist() == [1, 0]
    assert shifts.tolist() == [[-1, 0, 0], [1, 0, 0]]
    vec = edge_vectors(torch.tensor(positions), torch.tensor(cell), receivers, senders, shifts)
    np.testing.assert_allclose(vec.numpy(), [[-1.0, 0, 0], [1.0, 0, 0]], atol=1e-12)


def test_tiny_cell_many_images():
    cell = np.array([[1.0, 0.0, 0.0], [0.3, 0.9, 0.0], [0.2, 0.1, 1.1]])
    positions = np.array([[0.1, 0.2, 0.3], [0.5, 0.5, 0.6]])
    pbc = np.array([True, True, True])
    pairs = radius_pairs(positions, cell, pbc, 3.5)
    assert as_set(pairs) == set(brute_images(positions, cell, pbc, 3.5))
    assert np.abs(pairs[2]).max() >= 3  # the cutoff spans several cells
    assert ((pairs[0] == pairs[1]) & pairs[2].any(axis=1)).any()  # self-images kept


def test_slab_ignores_the_vacuum_vector():
    rng = np.random.default_rng(3)
    cell = np.array([[3.0, 0.0, 0.0], [1.0, 2.8, 0.0], [0.0, 0.0, 20.0]])
    positions = rng.uniform(0, 1, (5, 3)) @ cell * np.array([1, 1, 0.2])
    pbc = np.array([True, True, False])
    with_vacuum = radius_pairs(positions, cell, pbc, 4.0)
    without = radius_pairs(positions, np.vstack([cell[:2], np.zeros(3)]), pbc, 4.0)
    degenerate = radius_pairs(positions, np.vstack([cell[:2], cell[0]]), pbc, 4.0)  # det = 0
    expected = set(brute_images(positions, cell, pbc, 4.0))
    assert as_set(with_vacuum) == as_set(without) == as_set(degenerate) == expected


def test_unpacked_sort_gives_the_same_order(monkeypatch):
    # The lexsort fallback only runs for absurd image counts; force it.
    cell = np.array([[1.0, 0.0, 0.0], [0.3, 0.9, 0.0], [0.2, 0.1, 1.1]])
    positions = np.random.default_rng(5).uniform(0, 1, (4, 3)) @ cell
    pbc = np.array([True, False, True])
    packed = radius_pairs(positions, cell, pbc, 2.5)
    monkeypatch.setattr(edge_order, "_LOW_WORD_BITS", 0)
    unpacked = radius_pairs(positions, cell, pbc, 2.5)
    assert_canonical(unpacked)
    for a, b in zip(packed, unpacked):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("knob", ["_SHIFT_TABLE_ROWS", "int64 code"])
def test_every_shift_decoding_gives_the_same_edges(monkeypatch, knob):
    # The table lookup serves few images per axis; many images (a cutoff far beyond
    # the cell) decode digit by digit, and int64 shifts take int64 arithmetic.
    cell = np.array([[1.0, 0.0, 0.0], [0.3, 0.9, 0.0], [0.2, 0.1, 1.1]])
    positions = np.random.default_rng(6).uniform(0, 1, (3, 3)) @ cell
    pbc = np.array([True, True, True])
    table = radius_pairs(positions, cell, pbc, 3.5)
    if knob == "_SHIFT_TABLE_ROWS":
        monkeypatch.setattr(edge_order, "_SHIFT_TABLE_ROWS", 0)
        other = radius_pairs(positions, cell, pbc, 3.5)
    else:
        r, s, sh = table
        shuffle = np.random.default_rng(0).permutation(len(r))
        other = edge_order.canonical_edges(r[shuffle], s[shuffle], sh[shuffle], len(positions))
    assert_canonical(other)
    assert as_set(other) == set(brute_images(positions, cell, pbc, 3.5))
    for a, b in zip(table, other):
        np.testing.assert_array_equal(a, b)


def test_sorted_pairs_are_one_edge_index_without_a_copy():
    positions = np.random.default_rng(1).uniform(0, 3, (12, 3))
    receivers, senders, _ = radius_pairs(positions, np.eye(3) * 3, np.ones(3, bool), 2.0)
    index = neighbours.edge_index_array(receivers, senders)
    assert np.shares_memory(index, receivers) and np.shares_memory(index, senders)
    np.testing.assert_array_equal(index, np.stack([senders, receivers]))
    # Arrays of another origin are stacked (copied) into the same layout.
    copied = neighbours.edge_index_array(receivers.copy(), senders.copy())
    assert not np.shares_memory(copied, receivers)
    np.testing.assert_array_equal(copied, index)


def test_vesin_uses_torchs_thread_count(monkeypatch):
    """The real vesin runs; a spy records the thread count it was given."""
    given_threads = []
    real = neighbours.vesin.NeighborList

    def spy(**kwargs):
        given_threads.append(kwargs.get("n_threads"))
        return real(**kwargs)

    monkeypatch.setattr(neighbours.vesin, "NeighborList", spy)
    monkeypatch.setattr(neighbours, "_searches", threading.local())  # none kept yet
    positions = np.random.default_rng(0).uniform(0, 4, (20, 3))
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            pairs = radius_pairs(positions, np.zeros((3, 3)), np.zeros(3, bool), 2.0)
            assert_canonical(pairs)
    finally:
        torch.set_num_threads(previous)
    assert given_threads == [1, 2]


def test_reused_searches_leave_earlier_results_intact_and_threads_apart():
    # Each thread reuses its vesin search (and its buffers) across calls: results of
    # earlier calls must stay as they were, and threads must not share a search.
    rng = np.random.default_rng(11)
    cell = 9.0 * np.eye(3)
    pbc = np.array([True, True, True])
    structures = [rng.uniform(0, 9, (n, 3)) for n in (150, 40, 150, 90, 120, 60)]
    first = radius_pairs(structures[0], cell, pbc, 3.0)
    kept = [a.copy() for a in first]
    expected = [full_list_reference(p, cell, pbc, 3.0, 1) for p in structures]
    for p, want in zip(structures, expected):  # one thread, one search, many sizes
        for got, w in zip(radius_pairs(p, cell, pbc, 3.0), want):
            np.testing.assert_array_equal(got, w)
    for got, was in zip(first, kept):
        np.testing.assert_array_equal(got, was)
    with ThreadPoolExecutor(max_workers=3) as pool:  # concurrent calls, own searches
        results = list(pool.map(lambda p: radius_pairs(p, cell, pbc, 3.0), structures * 4))
    for got, want in zip(results, expected * 4):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_molecule_with_zero_cell():
    positions = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.5, 0.0], [5.0, 5.0, 5.0]])
    pairs = radius_pairs(positions, np.zeros((3, 3)), np.array([False] * 3), 1.6)
    assert as_set(pairs) == {(0, 1, 0, 0, 0), (0, 2, 0, 0, 0), (1, 0, 0, 0, 0), (2, 0, 0, 0, 0)}
    assert_canonical(pairs)


def test_coincident_atoms_are_an_edge_of_length_zero():
    positions = np.zeros((2, 3))
    pairs = radius_pairs(positions, np.zeros((3, 3)), np.array([False] * 3), 1.0)
    assert as_set(pairs) == {(0, 1, 0, 0, 0), (1, 0, 0, 0, 0)}


def test_single_atom():
    one = np.array([[0.2, 0.3, 0.4]])
    assert len(radius_pairs(one, np.zeros((3, 3)), np.array([False] * 3), 5.0)[0]) == 0
    receivers, senders, shifts = radius_pairs(one, 2.0 * np.eye(3), np.array([True] * 3), 2.1)
    assert (receivers == 0).all() and (senders == 0).all()
    assert sorted(map(tuple, shifts.tolist())) == sorted(
        [tuple(v) for v in (np.vstack([np.eye(3), -np.eye(3)]).astype(int)).tolist()]
    )


@pytest.mark.parametrize("builder", ["radius", "knn"])
def test_zero_atoms(builder):
    empty = np.zeros((0, 3))
    if builder == "radius":
        pairs = radius_pairs(empty, np.eye(3), np.array([True] * 3), 3.0)
    else:
        pairs = knn_pairs(empty, np.eye(3), np.array([True] * 3), k=3)
    assert [p.shape for p in pairs] == [(0,), (0,), (0, 3)]
    assert all(p.dtype == np.int64 for p in pairs)


@pytest.mark.parametrize(
    "positions, cell, pbc, cutoff, match",
    [
        (np.zeros((2, 3)), np.eye(3), [True] * 3, 0.0, "cutoff"),
        (np.zeros((2, 3)), np.eye(3), [True] * 3, -1.0, "cutoff"),
        (np.zeros((2, 3)), np.eye(3), [True] * 3, float("nan"), "cutoff"),
        (np.zeros((2, 3)), np.eye(3), [True] * 3, float("inf"), "cutoff"),
        (np.zeros((2, 3)), np.eye(3), [True] * 3, "five", "cutoff"),
        (np.array([[0.0, np.nan, 0.0]]), np.eye(3), [True] * 3, 1.0, "atoms \\[0\\]"),
        (np.zeros((2, 2)), np.eye(3), [True] * 3, 1.0, "shape"),
        (np.zeros((2, 3)), np.eye(2), [True] * 3, 1.0, "cell"),
        (np.zeros((2, 3)), np.full((3, 3), np.inf), [True] * 3, 1.0, "cell"),
        (np.zeros((2, 3)), np.zeros((3, 3)), [True] * 3, 1.0, "periodic directions abc"),
        (np.zeros((2, 3)), np.diag([1.0, 1.0, 0.0]), [True] * 3, 1.0, "dependent"),
        (np.zeros((2, 3)), np.diag([1.0, 1.0, 1.0])[[0, 0, 2]], [True, True, False], 1.0, "ab"),
        (np.zeros((2, 3)), np.eye(3), [1, 1, 1], 1.0, "pbc"),
        (np.zeros((2, 3)), np.eye(3), [True, True], 1.0, "pbc"),
    ],
)
def test_bad_input_raises_structure_error(positions, cell, pbc, cutoff, match):
    with pytest.raises(StructureError, match=match):
        radius_pairs(positions, cell, np.array(pbc), cutoff)


# --------------------------------------------------------------------------- knn


def brute_knn(positions, cell, pbc, k, cutoff=None):
    """Per receiver, every candidate within the k-th distance (relative tie tolerance)."""
    n = len(positions)
    diameter = np.linalg.norm(np.ptp(positions, axis=0))
    # Non-periodic: beyond the diameter every pair is a candidate, so one pass settles it.
    reach = cutoff if cutoff is not None else 2.0 if pbc.any() else 2.0 * diameter + 1.0
    while True:  # without a cutoff, widen until each atom's k-th distance is safely inside
        candidates = brute_images(positions, cell, pbc, reach)
        out, settled = set(), True
        for r in range(n):
            mine = {key: d for key, d in candidates.items() if key[0] == r}
            if not mine:
                settled &= not pbc.any()  # a periodic atom always has images further out
                continue
            ds = sorted(mine.values())
            kth = ds[min(k, len(ds)) - 1]
            settled &= len(ds) >= k or not pbc.any()
            settled &= kth * (1 + 2 * KNN_TIE_RTOL) < reach
            out |= {key for key, d in mine.items() if d <= kth * (1 + KNN_TIE_RTOL)}
        if cutoff is not None or settled:
            return out
        reach *= 2.0


@SETTINGS
@given(structures(max_atoms=5), st.integers(1, 8), st.one_of(st.none(), st.floats(0.5, 2.0)))
def test_knn_matches_brute_force(structure, k, relative_cutoff):
    positions, cell, pbc, scale = structure
    cutoff = None if relative_cutoff is None else relative_cutoff * scale
    pairs = knn_pairs(positions, cell, pbc, k=k, cutoff=cutoff)
    assert_canonical(pairs)
    assert as_set(pairs) == brute_knn(positions, cell, pbc, k, cutoff)
    if cutoff is not None and len(pairs[0]):
        assert distances(positions, cell, pairs).max() < cutoff


def _cube(rotate_seed=None):
    corners = np.array(list(itertools.product([0.0, 1.5], repeat=3)))
    if rotate_seed is not None:  # rotated: the ties now hold only up to round-off
        q, _ = np.linalg.qr(np.random.default_rng(rotate_seed).normal(size=(3, 3)))
        corners = corners @ q.T + 0.123
    return corners


@pytest.mark.parametrize("rotate_seed", [None, 0, 1, 2])
def test_knn_keeps_every_tied_neighbour(rotate_seed):
    # Cube corners: k=2 ties with the 3 edge-neighbours; k=4 with the 3 face diagonals too.
    corners = _cube(rotate_seed)
    no_pbc = np.array([False] * 3)
    receivers, _, _ = knn_pairs(corners, np.zeros((3, 3)), no_pbc, k=2)
    assert np.bincount(receivers).tolist() == [3] * 8
    receivers, _, _ = knn_pairs(corners, np.zeros((3, 3)), no_pbc, k=4)
    assert np.bincount(receivers).tolist() == [6] * 8


def test_knn_square_and_simple_cubic_lattice():
    square = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    receivers, _, _ = knn_pairs(square, np.zeros((3, 3)), np.array([False] * 3), k=1)
    assert np.bincount(receivers).tolist() == [2] * 4
    # One atom in a cubic cell: its 6 nearest images tie, and so do the next 12.
    one = np.zeros((1, 3))
    assert len(knn_pairs(one, 2.0 * np.eye(3), np.array([True] * 3), k=1)[0]) == 6
    assert len(knn_pairs(one, 2.0 * np.eye(3), np.array([True] * 3), k=7)[0]) == 18


@SETTINGS
@given(st.integers(1, 7), st.integers(0, 3), st.randoms(use_true_random=False))
def test_knn_permuting_atoms_permutes_edges(k, rotate_seed, rnd):
    corners = _cube(rotate_seed)
    perm = list(range(8))
    rnd.shuffle(perm)
    perm = np.array(perm)
    inverse = np.argsort(perm)
    zero, no_pbc = np.zeros((3, 3)), np.array([False] * 3)
    ours = as_set(knn_pairs(corners, zero, no_pbc, k=k))
    theirs = as_set(knn_pairs(corners[perm], zero, no_pbc, k=k))
    assert {(int(inverse[r]), int(inverse[s]), *S) for r, s, *S in ours} == theirs


def test_knn_single_atom_without_images_has_no_edges():
    pairs = knn_pairs(np.ones((1, 3)), np.zeros((3, 3)), np.array([False] * 3), k=3)
    assert len(pairs[0]) == 0


def test_knn_with_fewer_candidates_than_k():
    positions = np.array([[0.0, 0, 0], [1.0, 0, 0], [0.0, 2.0, 0]])
    no_pbc = np.array([False] * 3)
    assert as_set(knn_pairs(positions, np.zeros((3, 3)), no_pbc, k=10)) == as_set(complete_pairs(3))
    # With a cutoff an atom may get fewer than k, or none.
    pairs = knn_pairs(positions, np.zeros((3, 3)), no_pbc, k=2, cutoff=1.5)
    assert as_set(pairs) == {(0, 1, 0, 0, 0), (1, 0, 0, 0, 0)}


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "2"])
def test_knn_rejects_bad_k(k):
    with pytest.raises(StructureError, match="k must be"):
        knn_pairs(np.zeros((2, 3)), np.eye(3), np.array([True] * 3), k=k)


# --------------------------------------------------------------------------- complete


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_complete_pairs(n):
    pairs = complete_pairs(n)
    assert_canonical(pairs)
    assert as_set(pairs) == {(i, j, 0, 0, 0) for i in range(n) for j in range(n) if i != j}


@pytest.mark.parametrize("n", [-1, 2.0, True])
def test_complete_pairs_rejects_bad_size(n):
    with pytest.raises(StructureError, match="num_atoms"):
        complete_pairs(n)


# --------------------------------------------------------------------------- edge vectors


def test_edge_vectors_gradcheck_positions_and_cell():
    rng = np.random.default_rng(7)
    cell = np.array([[2.0, 0.1, 0.0], [0.4, 2.2, 0.1], [0.3, -0.2, 1.9]])
    positions = rng.uniform(0, 1, (2, 3)) @ cell
    pairs = radius_pairs(positions, cell, np.array([True, True, True]), 2.1)
    assert pairs[2].any()  # the check must exercise the shift term
    pos_t = torch.tensor(positions, requires_grad=True)
    cell_t = torch.tensor(cell, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, c: edge_vectors(p, c, *pairs), (pos_t, cell_t))


def test_edge_vectors_per_edge_cells_match_single_cell():
    rng = np.random.default_rng(8)
    cell = torch.tensor(rng.normal(size=(3, 3)) + 3 * np.eye(3))
    positions = torch.tensor(rng.normal(size=(4, 3)))
    pairs = radius_pairs(positions.numpy(), cell.numpy(), np.array([True] * 3), 4.0)
    single = edge_vectors(positions, cell, *pairs)
    per_edge = edge_vectors(positions, cell.expand(len(pairs[0]), 3, 3), *pairs)
    torch.testing.assert_close(single, per_edge, rtol=0, atol=1e-12)
    assert single.dtype == torch.float64


def test_edge_vectors_empty():
    out = edge_vectors(torch.zeros(0, 3), torch.eye(3), *complete_pairs(0))
    assert out.shape == (0, 3)


@pytest.mark.parametrize("symbol", ["Li", "Fe", "Na"])
def test_knn_keeps_bcc_ties_in_a_rotated_float32_batch(symbol):
    """bcc: 8 + 6 neighbours tie at k=12 (14 edges). Rotated in float32, the 6 second-shell
    distances spread by ~2e-7 relative: a 1e-9 tie tolerance kept only 12 of them."""
    from ase.build import bulk

    from geocompose.compiler import compile as compile_blueprint
    from geocompose.data.batch import Batch
    from geocompose.types import fields as F

    blueprint = {
        "name": "knn-f32",
        "symmetry": {"group": "O(3)"},
        "graph": {"type": "knn", "k": 12, "cutoff": 8.0},
        "embedding": {
            "species": [symbol],
            "node": {"type": "learned", "features": 2},
            "radial": {"type": "gaussian", "num": 4},
            "envelope": {"type": "cosine"},
        },
        "interactions": [{"type": "schnet", "filters": 2}],
        "readout": {"energy": {"type": "sum"}},
    }
    graph = compile_blueprint(blueprint, dtype=torch.float32, seed=0).graph
    atoms = bulk(symbol)
    counts = set()
    for seed in range(40):
        gen = torch.Generator().manual_seed(seed)
        rotation = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))[0]
        rotation = rotation.float()
        batch = Batch.from_ase([atoms], dtype=torch.float32)
        batch = batch.replace(positions=batch.positions @ rotation.T, cell=batch.cell @ rotation.T)
        counts.add(graph.topology(batch)[F.EDGE_INDEX].shape[1])
    assert counts == {14}
