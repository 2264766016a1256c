"""Triplets and quadruplets against an independent brute force over edge pairs."""

from __future__ import annotations

import ase
import ase.build
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geocompose.data import structures as S
from geocompose.errors import StructureError
from geocompose.nn.graph import higher_order as H
from geocompose.nn.graph.neighbours import knn_pairs, radius_pairs

SETTINGS = settings(max_examples=15, deadline=None)


def graph(atoms: ase.Atoms, cutoff: float, knn: int | None = None):
    pos, cell, pbc = atoms.positions, atoms.cell.array, np.asarray(atoms.pbc)
    r, s, sh = (
        knn_pairs(pos, cell, pbc, knn, cutoff) if knn else radius_pairs(pos, cell, pbc, cutoff)
    )
    edge_index = torch.tensor(np.stack([s, r]))
    shifts = torch.tensor(sh)
    vectors = torch.tensor(pos[s] - pos[r] + sh @ cell)
    return edge_index, shifts, vectors


def brute_triplets(edge_index, shifts):
    s, r = edge_index.numpy()
    sh = shifts.numpy()
    out = set()
    for a in range(len(s)):  # a = kj
        for b in np.flatnonzero(s == r[a]):  # b = ji with sender j = receiver of kj
            if s[a] == r[b] and (sh[a] == -sh[b]).all():
                continue  # k is the same image of i: backtracking
            out.add((a, int(b)))
    return out


def brute_quadruplets(edge_index, shifts, short):
    s, r = edge_index.numpy()
    sh = shifts.numpy()
    out = set()
    for kj, ji in brute_triplets(edge_index, shifts):
        if not (short[kj] and short[ji]):
            continue
        for lk in np.flatnonzero((r == s[kj]) & short.numpy()):
            if s[lk] == r[kj] and (sh[lk] == -sh[kj]).all():
                continue  # l = j
            if s[lk] == r[ji] and (sh[lk] + sh[kj] + sh[ji] == 0).all():
                continue  # l is the same image as i
            out.add((int(lk), kj, ji))
    return out


structures = (
    st.integers(0, 2**31 - 1)
    .map(np.random.default_rng)
    .flatmap(
        lambda rng: st.sampled_from(
            [
                S.random_molecule(rng, ["H", "C"], 3.0),
                S.random_cell(rng, ["H", "C"]),
                S.random_slab(rng, ["C"]),
            ]
        )
    )
)


@SETTINGS
@given(structures, st.sampled_from([2.5, 3.5]))
def test_triplets_match_brute_force(atoms, cutoff):
    edge_index, shifts, _ = graph(atoms, cutoff)
    got = H.triplet_index(edge_index, shifts, len(atoms))
    assert set(map(tuple, got.T.tolist())) == brute_triplets(edge_index, shifts)
    assert got.shape[1] == len(set(map(tuple, got.T.tolist())))  # no duplicates
    assert (got[1][1:] >= got[1][:-1]).all()  # sorted by the target edge ji


@SETTINGS
@given(structures, st.sampled_from([2.0, 3.0]))
def test_quadruplets_match_brute_force(atoms, torsion_cutoff):
    edge_index, shifts, vectors = graph(atoms, 3.0)
    short = vectors.norm(dim=1) < torsion_cutoff
    triplets = H.triplet_index(edge_index, shifts, len(atoms))
    got = H.quadruplet_index(edge_index, shifts, len(atoms), triplets, short)
    assert set(map(tuple, got.T.tolist())) == brute_quadruplets(edge_index, shifts, short)


def test_images_of_the_receiver_are_genuine_triplets():
    # One atom in a small cubic cell: every neighbour is an image of the atom itself, so
    # k == i == j as atoms; only the pair with opposite shifts (backtracking) is dropped.
    atoms = ase.Atoms("Cu", positions=[[0.1, 0.2, 0.3]], cell=np.eye(3) * 2.5, pbc=True)
    edge_index, shifts, _ = graph(atoms, 3.6)
    num = edge_index.shape[1]  # 6 faces + 12 edges of the cube = 18 images
    triplets = H.triplet_index(edge_index, shifts, 1)
    assert num == 18 and triplets.shape[1] == num * (num - 1)
    kj, ji = triplets
    assert not (shifts[kj] == -shifts[ji]).all(1).any()


def test_reverse_edges_radius_knn_and_unpacked_path(monkeypatch):
    atoms = S.random_cell(np.random.default_rng(3), ["C"])
    edge_index, shifts, _ = graph(atoms, 3.5)
    reverse = H.reverse_edges(edge_index, shifts, len(atoms))
    assert (reverse >= 0).all()
    assert torch.equal(edge_index[:, reverse], edge_index.flip(0))
    assert torch.equal(shifts[reverse], -shifts)
    monkeypatch.setattr(H, "_PACKED_KEY_LIMIT", 0)  # force the torch.unique path
    assert torch.equal(H.reverse_edges(edge_index, shifts, len(atoms)), reverse)
    # A kNN graph is not symmetric: some edges have no reverse, and none is invented.
    mol = ase.Atoms("C4", positions=[[0, 0, 0], [1, 0, 0], [0, 1.1, 0], [4, 4, 4]])
    edge_index, shifts, _ = graph(mol, 10.0, knn=1)
    reverse = H.reverse_edges(edge_index, shifts, 4)
    assert (reverse == -1).any()
    found = reverse >= 0
    assert torch.equal(edge_index[:, reverse[found]], edge_index[:, found].flip(0))


def test_unsorted_edges_give_the_same_triplets():
    atoms = S.random_molecule(np.random.default_rng(1), ["C"], 3.0)
    edge_index, shifts, _ = graph(atoms, 3.0)
    perm = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(0))
    got = H.triplet_index(edge_index[:, perm], shifts[perm], len(atoms))
    mapped = {(int(perm[a]), int(perm[b])) for a, b in got.T.tolist()}
    assert mapped == brute_triplets(edge_index, shifts)


def test_counts_are_exact_and_budget_refuses_before_allocating():
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    edge_index, shifts, _ = graph(atoms, 3.0)  # first shell: 12 neighbours
    counts = H.count_higher_order(edge_index, len(atoms))
    triplets = H.triplet_index(edge_index, shifts, len(atoms))
    assert counts["triplets_raw"] == triplets.shape[1] + edge_index.shape[1] == 32 * 12 * 12
    assert counts["quadruplets_raw"] == 32 * 12**3
    with pytest.raises(StructureError, match="triplets"):
        H.triplet_index(edge_index, shifts, len(atoms), max_triplets=100)
    short = torch.ones(edge_index.shape[1], dtype=torch.bool)
    with pytest.raises(StructureError, match="quadruplets"):
        H.quadruplet_index(edge_index, shifts, len(atoms), triplets, short, max_quadruplets=100)


def test_empty_and_single_atom():
    for n in (0, 1):
        edge_index = torch.zeros((2, 0), dtype=torch.int64)
        shifts = torch.zeros((0, 3), dtype=torch.int64)
        layout = H.triplet_layout(edge_index, shifts, n)
        assert layout.kj.numel() == 0
        values = torch.zeros((0, 3, 2), dtype=torch.float64)
        assert layout.contract(torch.zeros(0, 3, dtype=torch.float64), values).shape == (0, 2)


@pytest.mark.parametrize("per_order", [False, True])
def test_dense_and_sparse_contraction_agree_with_explicit_sum(per_order):
    rng = np.random.default_rng(0)
    batch = [ase.build.bulk("Cu", "fcc", a=3.61, cubic=True), S.random_molecule(rng, ["C"], 3.5)]
    batch[0].rattle(0.05, seed=1)
    atoms = batch[0] + ase.Atoms(batch[1].symbols, batch[1].positions + 30.0)  # two far-apart parts
    atoms.pbc = False
    edge_index, shifts, vectors = graph(atoms, 3.5)
    layout = H.triplet_layout(edge_index, shifts, len(atoms))
    assert layout.dense
    sparse = H.TripletLayout(layout.kj, layout.ji, layout.num_edges)
    values = torch.randn(edge_index.shape[1], 4, 3, dtype=torch.float64)
    dense_out = layout.contract(
        layout.harmonics(vectors, 4, order_major=per_order), values, per_order
    )
    sparse_out = sparse.contract(sparse.harmonics(vectors.clone(), 4), values, per_order)
    # Explicit: Y_l^0 of the angle at j between x_k - x_j and x_i - x_j.
    kj, ji = layout.kj, layout.ji
    a, b = vectors[kj], -vectors[ji]
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    y = torch.stack([torch.ones_like(cos), cos, 1.5 * cos**2 - 0.5, 2.5 * cos**3 - 1.5 * cos], 1)
    y = y * torch.tensor([(2 * l + 1) / (4 * np.pi) for l in range(4)], dtype=torch.float64).sqrt()
    terms = y[:, :, None] * values[kj]
    explicit = torch.zeros(values.shape, dtype=torch.float64).index_add_(0, ji, terms)
    explicit = explicit if per_order else explicit.sum(1)
    torch.testing.assert_close(dense_out, explicit)
    torch.testing.assert_close(sparse_out, explicit)


def test_layout_falls_back_to_sparse_when_padding_is_wasteful():
    # One atom with many neighbours among many with few: padding N * K^2 >> T.
    positions = [[0, 0, 0]] + [[np.cos(t) * 1.5, np.sin(t) * 1.5, 0] for t in np.linspace(0, 6, 20)]
    positions += [[20 + 3 * i, 0, 0] for i in range(60)] + [[20 + 3 * i, 1.0, 0] for i in range(60)]
    atoms = ase.Atoms(f"C{len(positions)}", positions=positions)
    edge_index, shifts, _ = graph(atoms, 2.0)
    assert not H.triplet_layout(edge_index, shifts, len(atoms)).dense
