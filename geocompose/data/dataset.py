"""Reference data for training: any file ASE reads, checked, split and batched.

A :class:`Dataset` holds one :class:`Record` per structure (plain numpy: positions,
numbers, cell, pbc and the targets present: energy, forces, stress). It is built from
a file (extxyz first; anything ``ase.io.read`` reads) or from ``Atoms``, refuses bad
data naming the structure index, splits by seeded fractions or by index files, and
groups structures into :class:`~geocompose.data.batch.Batch` objects of about a target
number of atoms.

Batches are built once and kept: a Batch caches its neighbour topology, so reusing the
same batches every epoch (shuffling their *order*, not their composition) builds each
neighbour list exactly once per training run.

Example::

    data = Dataset.from_file("cu.extxyz", species=["Cu"])
    splits = data.split(valid=0.1, test=0.1, seed=0)
    train = data.batches(splits.train, atoms_per_batch=256)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from geocompose.data.batch import Batch, record_targets
from geocompose.data.reading import COINCIDENT_DISTANCE, coincident_atoms, read_structures
from geocompose.data.records import Record, record_from_atoms
from geocompose.errors import StructureError
from geocompose.types import fields as F

__all__ = ["Dataset", "Record", "Splits", "read_index_file"]


@dataclass(frozen=True)
class Splits:
    """Structure indices of each split (disjoint, each sorted)."""

    train: list[int]
    valid: list[int]
    test: list[int] = field(default_factory=list)


def read_index_file(path: str | Path) -> list[int]:
    """Structure indices from a text file: whitespace- or comma-separated integers,
    ``#`` starts a comment.

    Raises:
        StructureError: unreadable file or a token that is not a non-negative integer.
    """
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise StructureError(f"cannot read index file {path}: {err.strerror}") from None
    indices = []
    for line_no, line in enumerate(text.splitlines(), 1):
        for token in line.split("#", 1)[0].replace(",", " ").split():
            if not token.isdigit():
                raise StructureError(f"{path}:{line_no}: {token!r} is not a structure index")
            indices.append(int(token))
    return indices


class Dataset:
    """Structures with reference targets, checked against a species list.

    Args:
        records: one :class:`Record` per structure.
        source: where the records came from (used in messages).
    """

    def __init__(self, records: Sequence[Record], source: str = "<memory>"):
        self.records = list(records)
        self.source = source

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_atoms(
        cls,
        structures: Iterable,
        source: str = "<atoms>",
        energy_key: str = F.ENERGY,
        forces_key: str = F.FORCES,
        stress_key: str = F.STRESS,
    ) -> Dataset:
        """From ``ase.Atoms`` with targets on their calculator or in ``info``/``arrays``."""
        keys = (energy_key, forces_key, stress_key)
        return cls([record_from_atoms(a, i, keys) for i, a in enumerate(structures)], source)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        format: str | None = None,
        index: str = ":",
        **keys: str,
    ) -> Dataset:
        """Read every structure of a file ASE reads (extxyz, ASE db, VASP OUTCAR, ...).

        Args:
            path: the file.
            format: ASE format name when the extension does not say it.
            index: ASE index string (``":"`` is every frame).
            keys: ``energy_key``, ``forces_key``, ``stress_key`` when the file names its
                targets differently (e.g. ``energy_key="REF_energy"``).

        Raises:
            StructureError: the file is missing or ASE cannot parse it (the message
                names the frame, and for xyz files the line).
        """
        path = Path(path)
        if not path.is_file():
            raise StructureError(f"no data file {path}")
        structures = read_structures(path, format=format, index=index)
        return cls.from_atoms(structures, source=str(path), **keys)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Record:
        return self.records[index]

    def subset(self, indices: Sequence[int]) -> Dataset:
        return Dataset([self.records[i] for i in indices], self.source)

    @property
    def num_atoms(self) -> int:
        return sum(len(r) for r in self.records)

    def fingerprint(self) -> str:
        """A digest of every structure and target, in order: two data sets with the same
        fingerprint hold the same structures, so a checkpoint's stored splits still
        point at the structures they were made from."""
        digest = hashlib.sha256()
        for r in self.records:
            arrays = [r.numbers, r.positions, r.cell, r.pbc, r.forces, r.stress]
            for array in arrays:
                digest.update(b"-" if array is None else np.ascontiguousarray(array).tobytes())
            digest.update(repr(r.energy).encode())
        return digest.hexdigest()[:16]

    def has(self, target: str) -> bool:
        """Whether every structure carries ``target`` (energy, forces or stress)."""
        return bool(self.records) and all(getattr(r, target) is not None for r in self.records)

    # -- checks ---------------------------------------------------------------------
    def check(
        self, species: Sequence[str] | None = None, require: Sequence[str] = (F.ENERGY,)
    ) -> None:
        """Refuse data a model cannot train on, naming the first bad structure.

        Args:
            species: chemical symbols the model knows; other elements are refused.
            require: targets every structure must have (``energy``, ``forces``, ``stress``).

        Raises:
            StructureError: empty data, a missing required target, a non-finite value,
                an unknown element, a degenerate periodic cell, or coincident atoms.
        """
        import ase.data

        if not self.records:
            raise StructureError(f"{self.source}: no structures")
        known = None if species is None else {ase.data.atomic_numbers[s] for s in species}
        for i, r in enumerate(self.records):
            where = f"{self.source}: structure {i}"
            if len(r) == 0:
                raise StructureError(f"{where} has no atoms")
            for name in require:
                if getattr(r, name) is None:
                    raise StructureError(f"{where} has no {name} (every structure needs one)")
            for name, value in (
                ("positions", r.positions),
                (F.ENERGY, r.energy),
                (F.FORCES, r.forces),
                (F.STRESS, r.stress),
            ):
                if value is not None and not np.isfinite(value).all():
                    detail = ""
                    if np.ndim(value) == 2 and name != F.STRESS:
                        detail = (
                            f" (atom {int(np.flatnonzero(~np.isfinite(value).all(axis=1))[0])})"
                        )
                    raise StructureError(f"{where} has a non-finite value in {name}{detail}")
            if known is not None:
                unknown = sorted({int(z) for z in r.numbers} - known)
                if unknown:
                    names = ", ".join(ase.data.chemical_symbols[z] for z in unknown)
                    raise StructureError(
                        f"{where} contains {names}, which the model does not know "
                        f"(its species: {', '.join(species)})"
                    )
            if r.pbc.any() and np.linalg.matrix_rank(r.cell[r.pbc], tol=1e-8) < r.pbc.sum():
                raise StructureError(
                    f"{where} is periodic along {r.pbc.tolist()} with a degenerate cell"
                )
            pair = coincident_atoms(r.positions, r.cell, r.pbc)
            if pair is not None:
                a, b, distance = pair
                raise StructureError(
                    f"{where}: atoms {a} and {b} coincide ({distance:.2g} Å apart, periodic "
                    f"images included; closer than {COINCIDENT_DISTANCE} Å is one atom written "
                    "twice)"
                )

    # -- splits ---------------------------------------------------------------------
    def split(self, valid: float = 0.1, test: float = 0.0, seed: int = 0) -> Splits:
        """Seeded random split by fractions; train gets the rest (at least 1 each used).

        Raises:
            StructureError: fractions outside [0, 1) or leaving no training structure.
        """
        n = len(self)
        if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
            raise StructureError(
                f"split fractions valid={valid}, test={test} must be in [0, 1) and sum below 1"
            )
        order = np.random.default_rng(seed).permutation(n)
        n_valid = max(1, round(valid * n)) if valid > 0 else 0
        n_test = max(1, round(test * n)) if test > 0 else 0
        if n - n_valid - n_test < 1:
            raise StructureError(
                f"{self.source}: {n} structures leave none for training after the split"
            )
        valid_idx = sorted(order[:n_valid].tolist())
        test_idx = sorted(order[n_valid : n_valid + n_test].tolist())
        train_idx = sorted(order[n_valid + n_test :].tolist())
        return Splits(train_idx, valid_idx, test_idx)

    def split_from_files(
        self, train: str | Path, valid: str | Path | None = None, test: str | Path | None = None
    ) -> Splits:
        """Splits given by index files (see :func:`read_index_file`).

        Raises:
            StructureError: an index out of range or in two splits.
        """
        parts = [read_index_file(p) if p is not None else [] for p in (train, valid, test)]
        seen: dict[int, str] = {}
        for name, indices, path in zip(("train", "valid", "test"), parts, (train, valid, test)):
            for i in indices:
                if i >= len(self):
                    raise StructureError(
                        f"{path}: index {i} is out of range ({len(self)} structures)"
                    )
                if i in seen:
                    raise StructureError(
                        f"{path}: structure {i} is in both the {seen[i]} and {name} splits"
                    )
                seen[i] = name
        return Splits(*(sorted(p) for p in parts))

    # -- batching -------------------------------------------------------------------
    def batches(
        self,
        indices: Sequence[int] | None = None,
        atoms_per_batch: int = 256,
        dtype: torch.dtype = torch.float32,
        seed: int | None = None,
        edges_per_batch: int | None = None,
        count_edges: Callable[[Batch], int] | None = None,
    ) -> list[Batch]:
        """Group structures into batches of at most ``atoms_per_batch`` atoms, and at most
        ``edges_per_batch`` edges when given (a structure over either limit gets a batch
        of its own). Build once and reuse: each Batch caches its neighbour topology.

        Args:
            indices: structures to batch (all when None), in this order unless ``seed``.
            atoms_per_batch: target atom count per batch.
            dtype: float dtype of positions, cell and targets.
            seed: shuffle the structures before grouping (so batches mix temperatures
                or trajectories); None keeps the given order.
            edges_per_batch: target edge count per batch; the cost of message passing
                grows with edges, so this evens out batches of dense and sparse
                structures that atom counts alone would not.
            count_edges: the model's edge count of a one-structure batch (the data
                layer knows no graph builder); needed with ``edges_per_batch``.
        """
        if atoms_per_batch < 1:
            raise StructureError(f"atoms_per_batch must be positive; got {atoms_per_batch}")
        if edges_per_batch is not None and (edges_per_batch < 1 or count_edges is None):
            raise StructureError(
                f"edges_per_batch must be positive and come with count_edges; got {edges_per_batch}"
            )
        order = list(range(len(self))) if indices is None else list(indices)
        if seed is not None:
            order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
        edges = {i: count_edges(self.collate([i], dtype)) for i in order} if edges_per_batch else {}
        groups: list[list[int]] = []
        atoms = edge_total = 0
        for i in order:
            size, links = len(self.records[i]), edges.get(i, 0)
            fits = atoms + size <= atoms_per_batch
            if edges_per_batch:
                fits = fits and edge_total + links <= edges_per_batch
            if groups and fits:
                groups[-1].append(i)
                atoms += size
                edge_total += links
            else:
                groups.append([i])
                atoms, edge_total = size, links
        return [self.collate(g, dtype) for g in groups]

    def collate(self, indices: Sequence[int], dtype: torch.dtype = torch.float32) -> Batch:
        """One Batch of the given structures, with every target all of them carry."""
        records = [self.records[i] for i in indices]
        if not records:
            return Batch.empty(dtype)
        batch = Batch(
            torch.tensor(np.concatenate([r.positions for r in records]), dtype=dtype),
            torch.from_numpy(np.concatenate([r.numbers for r in records])),
            torch.from_numpy(
                np.concatenate([np.full(len(r), s, dtype=np.int64) for s, r in enumerate(records)])
            ),
            torch.tensor(np.stack([r.cell for r in records]), dtype=dtype),
            torch.from_numpy(np.stack([r.pbc for r in records])),
        )
        batch.targets.update(record_targets(records, dtype))
        return batch

    def composition(self, species: Sequence[str]) -> np.ndarray:
        """(S, len(species)) atom counts of each species per structure."""
        import ase.data

        column = {ase.data.atomic_numbers[s]: k for k, s in enumerate(species)}
        counts = np.zeros((len(self), len(species)))
        for i, r in enumerate(self.records):
            for z, c in zip(*np.unique(r.numbers, return_counts=True)):
                if int(z) in column:
                    counts[i, column[int(z)]] = c
        return counts

    def to_atoms(self, index: int):
        """Structure ``index`` as ``ase.Atoms`` (targets on a SinglePointCalculator)."""
        import ase
        from ase.calculators.singlepoint import SinglePointCalculator

        r = self.records[index]
        atoms = ase.Atoms(numbers=r.numbers, positions=r.positions, cell=r.cell, pbc=r.pbc)
        results = {k: v for k, v in ((F.ENERGY, r.energy), (F.FORCES, r.forces)) if v is not None}
        if r.stress is not None:
            from ase.stress import full_3x3_to_voigt_6_stress

            results[F.STRESS] = full_3x3_to_voigt_6_stress(r.stress)
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms
