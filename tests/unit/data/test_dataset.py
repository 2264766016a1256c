"""Dataset: reading, refusing bad data by structure index, splits, batching."""

from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from geocompose.data.dataset import Dataset, read_index_file
from geocompose.errors import StructureError

SAMPLE = Path(__file__).parents[3] / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"


def labelled(atoms: Atoms, energy=1.0, forces=None, stress=None) -> Atoms:
    atoms = atoms.copy()
    results = {"energy": energy, "forces": np.zeros((len(atoms), 3)) if forces is None else forces}
    if stress is not None:
        results["stress"] = stress
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def test_shipped_sample_reads_with_every_target():
    data = Dataset.from_file(SAMPLE)
    assert len(data) == 200 and data.num_atoms == 200 * 32
    assert data.has("energy") and data.has("forces") and data.has("stress")
    data.check(["Cu"], require=("energy", "forces", "stress"))
    first = data[0]
    assert first.forces.shape == (32, 3) and first.stress.shape == (3, 3)
    np.testing.assert_allclose(first.stress, first.stress.T)  # Voigt 6 or 9 -> symmetric 3x3
    assert first.pbc.all()


def test_extxyz_round_trip_with_molecules_and_custom_keys(tmp_path):
    water = molecule("H2O")
    water.info["REF_energy"] = -14.2
    water.arrays["REF_forces"] = np.arange(9.0).reshape(3, 3)
    path = tmp_path / "w.extxyz"
    write(path, [water, water], format="extxyz")
    data = Dataset.from_file(path, energy_key="REF_energy", forces_key="REF_forces")
    assert data[1].energy == pytest.approx(-14.2)
    np.testing.assert_allclose(data[1].forces, np.arange(9.0).reshape(3, 3))
    assert not data[0].pbc.any() and data[0].stress is None
    batch = data.collate([0, 1], torch.float64)
    assert batch.targets["energy"].tolist() == pytest.approx([-14.2, -14.2])
    assert "stress" not in batch.targets


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda a: labelled(a, energy=None), "structure 2 has no energy"),
        (
            lambda a: labelled(a, forces=np.full((len(a), 3), np.nan)),
            "structure 2 has a non-finite value in forces (atom 0)",
        ),
        (
            lambda a: labelled(a, energy=float("inf")),
            "structure 2 has a non-finite value in energy",
        ),
        (lambda a: labelled(Atoms("Cu2Au", positions=np.eye(3) * 2)), "structure 2 contains Au"),
    ],
)
def test_bad_structures_are_refused_by_index(bad, message):
    good = labelled(bulk("Cu", "fcc", a=3.6))
    structures = [good, good, bad(bulk("Cu", "fcc", a=3.6))]
    if "no energy" in message:
        structures[2].calc = SinglePointCalculator(structures[2], forces=np.zeros((1, 3)))
    with pytest.raises(StructureError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Dataset.from_atoms(structures).check(["Cu"], require=("energy", "forces"))


def test_mismatched_force_length_is_refused_while_reading():
    atoms = bulk("Cu", "fcc", a=3.6).repeat(2)  # 8 atoms
    atoms.arrays["REF_forces"] = np.zeros((8, 3))
    wrong = atoms.copy()
    wrong.info["REF_forces"] = np.zeros((5, 3))  # found in info: 5 rows for 8 atoms
    del wrong.arrays["REF_forces"]
    with pytest.raises(
        StructureError,
        match=r"structure 1: 'REF_forces' has shape \(5, 3\) but the structure has 8 atoms",
    ):
        Dataset.from_atoms([atoms, wrong], forces_key="REF_forces")


def test_unreadable_or_missing_file(tmp_path):
    with pytest.raises(StructureError, match="no data file"):
        Dataset.from_file(tmp_path / "missing.extxyz")
    broken = tmp_path / "broken.extxyz"
    broken.write_text("3\nnot a comment line\nCu 0 0\n")
    with pytest.raises(StructureError, match=r"broken.extxyz:1: frame 0: the file ends inside"):
        Dataset.from_file(broken)


def test_fraction_split_is_seeded_disjoint_and_complete():
    data = Dataset.from_atoms([labelled(bulk("Cu", "fcc", a=3.6 + 0.01 * i)) for i in range(50)])
    a, b, c = (
        data.split(0.2, 0.1, seed=3),
        data.split(0.2, 0.1, seed=3),
        data.split(0.2, 0.1, seed=4),
    )
    assert a == b and a != c
    assert (len(a.train), len(a.valid), len(a.test)) == (35, 10, 5)
    assert sorted(a.train + a.valid + a.test) == list(range(50))
    with pytest.raises(StructureError, match="leave none for training"):
        Dataset.from_atoms([labelled(bulk("Cu"))] * 2).split(0.4, 0.4)


def test_index_file_split(tmp_path):
    data = Dataset.from_atoms([labelled(bulk("Cu"))] * 6)
    (tmp_path / "train.txt").write_text("0, 1 2  # the first three\n3\n")
    (tmp_path / "valid.txt").write_text("4 5\n")
    splits = data.split_from_files(tmp_path / "train.txt", tmp_path / "valid.txt")
    assert splits.train == [0, 1, 2, 3] and splits.valid == [4, 5] and splits.test == []
    (tmp_path / "overlap.txt").write_text("3 4")
    with pytest.raises(StructureError, match="structure 3 is in both the train and valid"):
        data.split_from_files(tmp_path / "train.txt", tmp_path / "overlap.txt")
    (tmp_path / "far.txt").write_text("9")
    with pytest.raises(StructureError, match="index 9 is out of range"):
        data.split_from_files(tmp_path / "far.txt")
    (tmp_path / "junk.txt").write_text("1\nx2\n")
    with pytest.raises(StructureError, match="junk.txt:2: 'x2'"):
        read_index_file(tmp_path / "junk.txt")


def test_batches_respect_the_atom_target_and_keep_targets_aligned():
    sizes = [1, 2, 4, 8, 3, 5, 1]
    structures = [
        labelled(
            bulk("Cu", "sc", a=2.5).repeat((n, 1, 1)),
            energy=float(n),
            forces=np.full((n, 3), float(n)),
        )
        for n in sizes
    ]
    data = Dataset.from_atoms(structures)
    batches = data.batches(atoms_per_batch=6, dtype=torch.float64)
    assert [b.counts().tolist() for b in batches] == [[1, 2], [4], [8], [3], [5, 1]]
    for b in batches:
        assert b.num_atoms <= 6 or b.num_structures == 1  # a big structure gets its own batch
        counts = b.counts().to(torch.float64)
        assert torch.equal(b.targets["energy"], counts)  # energy n goes with the n-atom structure
        assert torch.equal(b.targets["forces"][:, 0], counts.repeat_interleave(b.counts()))
    shuffled = data.batches(atoms_per_batch=6, seed=1)
    assert sum(b.num_structures for b in shuffled) == len(sizes)
    assert [b.counts().tolist() for b in shuffled] == [
        b.counts().tolist() for b in data.batches(atoms_per_batch=6, seed=1)
    ]


def test_batches_can_also_cap_edges():
    # Same atom counts, very different densities: a dense cell has many more edges.
    dense = [labelled(bulk("Cu", "fcc", a=3.6, cubic=True)) for _ in range(3)]  # 4 atoms each
    sparse = [labelled(Atoms("Cu4", positions=np.eye(4, 3) * 10.0)) for _ in range(3)]
    data = Dataset.from_atoms([*dense, *sparse])

    def count_edges(one) -> int:  # a stand-in graph: 10 edges per atom if periodic, else none
        return 10 * one.num_atoms if bool(one.pbc.any()) else 0

    by_atoms = data.batches(atoms_per_batch=12)
    assert [b.num_structures for b in by_atoms] == [3, 3]
    capped = data.batches(atoms_per_batch=12, edges_per_batch=80, count_edges=count_edges)
    # 40 edges per dense cell: two fit under 80, the third starts a batch, and the
    # edge-free sparse ones fill that batch up to the atom limit.
    assert [b.num_structures for b in capped] == [2, 3, 1]
    assert sum(b.num_structures for b in capped) == 6
    with pytest.raises(StructureError, match="count_edges"):
        data.batches(edges_per_batch=80)


def test_to_atoms_keeps_targets():
    data = Dataset.from_file(SAMPLE, index=":3")
    atoms = data.to_atoms(2)
    assert atoms.get_potential_energy() == pytest.approx(data[2].energy)
    np.testing.assert_allclose(atoms.get_forces(), data[2].forces)
    assert Dataset.from_atoms([atoms])[0].stress == pytest.approx(data[2].stress)


def test_batch_from_ase_reads_the_targets_as_the_data_set_does():
    """One reader: ``Batch.from_ase`` on a calculator's results gives the collated
    batch's energy, forces and stress (3x3 from ASE's Voigt), exactly."""
    from geocompose.data.batch import Batch
    from geocompose.types import fields as F

    frames = []
    for k, a in enumerate((3.55, 3.61, 3.67)):
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.rattle(0.05, seed=k)
        rng = np.random.default_rng(k)
        atoms.calc = SinglePointCalculator(
            atoms, energy=-k - 1.0, forces=rng.normal(size=(4, 3)), stress=rng.normal(size=6)
        )
        frames.append(atoms)
    direct = Batch.from_ase(frames, dtype=torch.float64)
    collated = Dataset.from_atoms(frames).collate([0, 1, 2], torch.float64)
    assert set(direct.targets) == {F.ENERGY, F.FORCES, F.STRESS}
    for name in direct.targets:
        assert torch.equal(direct.targets[name], collated.targets[name])
    assert torch.equal(direct.targets[F.STRESS][0], torch.tensor(frames[0].get_stress(voigt=False)))
    frames[1].calc = None  # a target only some structures carry is left out
    assert Batch.from_ase(frames).targets == {}
