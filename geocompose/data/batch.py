"""A batch of atomic structures (molecules and periodic cells), from ASE and back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from geocompose.data.cache import Cache, RunCaches
from geocompose.data.records import Record, record_from_atoms
from geocompose.errors import StructureError
from geocompose.types import fields as F


@dataclass
class Batch:
    """Several structures concatenated along the atom axis.

    Positions are treated as immutable: derived data (neighbour lists, triplets) is
    cached on the batch (:mod:`geocompose.data.cache`), so transform a batch with
    :meth:`replace`, never in place.

    Args:
        positions: (N, 3) Cartesian coordinates in Å.
        atomic_numbers: (N,) int64.
        batch: (N,) int64, the structure each atom belongs to (non-decreasing).
        cell: (B, 3, 3), rows are lattice vectors in Å (zeros for a molecule).
        pbc: (B, 3) bool, periodic along each lattice vector.
        targets: reference values by name (energy (B,), forces (N, 3), ...), if any.
    """

    positions: torch.Tensor
    atomic_numbers: torch.Tensor
    batch: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    targets: dict[str, torch.Tensor] = field(default_factory=dict)
    _cache: Cache = field(default_factory=Cache, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.positions.shape[0]
        if self.positions.shape != (n, 3):
            raise StructureError(
                f"positions must have shape (N, 3); got {tuple(self.positions.shape)}"
            )
        if self.atomic_numbers.shape != (n,) or self.batch.shape != (n,):
            raise StructureError("atomic_numbers and batch need one entry per atom")
        if (
            self.cell.dim() != 3
            or self.cell.shape[1:] != (3, 3)
            or self.pbc.shape != (self.cell.shape[0], 3)
        ):
            raise StructureError("cell must be (B, 3, 3) and pbc (B, 3)")
        if n and not torch.isfinite(self.positions).all():
            bad = int((~torch.isfinite(self.positions)).any(dim=1).nonzero()[0])
            raise StructureError(
                f"atom {bad} has a non-finite position {self.positions[bad].tolist()}"
            )
        if n and (self.batch[1:] < self.batch[:-1]).any():
            raise StructureError("atoms must be grouped by structure (batch non-decreasing)")

    @property
    def num_structures(self) -> int:
        return self.cell.shape[0]

    @property
    def num_atoms(self) -> int:
        return self.positions.shape[0]

    def counts(self) -> torch.Tensor:
        """(B,) atoms per structure."""
        return torch.bincount(self.batch, minlength=self.num_structures)

    def ranges(self) -> list[tuple[int, int]]:
        """[start, stop) atom range of each structure."""
        stops = torch.cumsum(self.counts(), 0).tolist()
        starts = [0] + stops[:-1]
        return list(zip(starts, stops))

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """Memoise derived data (neighbour topology) for this batch."""
        return self._cache.cached(key, compute)

    def run_caches(self, scope: Any) -> RunCaches:
        """The caches a model call on this batch hands its blocks: this batch's cache
        (memos of the edge set named ``scope``) and a fresh per-run one."""
        return RunCaches(self._cache, scope)

    def replace(self, **changes: Any) -> Batch:
        """A new batch with some tensors changed and an empty cache."""
        return replace(self, _cache=Cache(), **changes)

    def same_topology(self, **changes: Any) -> Batch:
        """A new batch with some tensors changed that shares this batch's cache, for
        changes that keep its neighbour topology (a rigid motion, a zero strain): the
        edge rows of the two correspond one to one. Geometry memos are per run, never
        on the batch, so nothing computed from the old positions is reused."""
        return replace(self, _cache=self._cache, **changes)

    def to(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> Batch:
        """Move float tensors to ``dtype`` and everything to ``device``."""

        def move(t: torch.Tensor) -> torch.Tensor:
            if t.is_floating_point() and dtype is not None:
                t = t.to(dtype)
            return t.to(device) if device is not None else t

        return Batch(
            move(self.positions),
            move(self.atomic_numbers),
            move(self.batch),
            move(self.cell),
            move(self.pbc),
            {k: move(v) for k, v in self.targets.items()},
        )

    def structure(self, index: int) -> Batch:
        """One structure of the batch as its own batch."""
        start, stop = self.ranges()[index]
        return Batch(
            self.positions[start:stop],
            self.atomic_numbers[start:stop],
            torch.zeros(stop - start, dtype=torch.long, device=self.batch.device),
            self.cell[index : index + 1],
            self.pbc[index : index + 1],
        )

    @classmethod
    def concatenate(cls, batches: Sequence[Batch]) -> Batch:
        """Join batches (structure indices renumbered)."""
        if not batches:
            raise StructureError("cannot concatenate zero batches")
        offsets = np.cumsum([0] + [b.num_structures for b in batches[:-1]])
        return cls(
            torch.cat([b.positions for b in batches]),
            torch.cat([b.atomic_numbers for b in batches]),
            torch.cat([b.batch + int(o) for b, o in zip(batches, offsets)]),
            torch.cat([b.cell for b in batches]),
            torch.cat([b.pbc for b in batches]),
        )

    @classmethod
    def empty(cls, dtype: torch.dtype = torch.float64) -> Batch:
        """A batch with no structures (models return empty outputs for it)."""
        return cls(
            torch.zeros((0, 3), dtype=dtype),
            torch.zeros(0, dtype=torch.long),
            torch.zeros(0, dtype=torch.long),
            torch.zeros((0, 3, 3), dtype=dtype),
            torch.zeros((0, 3), dtype=torch.bool),
        )

    @classmethod
    def from_ase(cls, structures, dtype: torch.dtype = torch.float64) -> Batch:
        """Batch ASE ``Atoms`` (one or a list); molecules get a zero cell.

        Energies, forces and stress attached through a calculator or ``info``/``arrays``
        (``energy``, ``forces``, ``stress``) become ``targets``.
        """
        import ase

        if isinstance(structures, ase.Atoms):
            structures = [structures]
        structures = list(structures)
        if not structures:
            return cls.empty(dtype)
        positions, numbers, index, cells, pbcs = [], [], [], [], []
        for s, atoms in enumerate(structures):
            if not isinstance(atoms, ase.Atoms):
                raise StructureError(f"structure {s} is a {type(atoms).__name__}, not ase.Atoms")
            pbc = np.asarray(atoms.pbc, dtype=bool)
            cell = np.asarray(atoms.cell.array, dtype=np.float64)
            # Periodic directions need linearly independent lattice vectors.
            if pbc.any() and np.linalg.matrix_rank(cell[pbc], tol=1e-8) < pbc.sum():
                raise StructureError(
                    f"structure {s} is periodic along {pbc.tolist()} but those lattice "
                    f"vectors are degenerate: {cell[pbc].tolist()}"
                )
            positions.append(np.asarray(atoms.positions, dtype=np.float64))
            numbers.append(np.asarray(atoms.numbers, dtype=np.int64))
            index.append(np.full(len(atoms), s, dtype=np.int64))
            cells.append(cell)
            pbcs.append(pbc)
        batch = cls(
            torch.tensor(np.concatenate(positions), dtype=dtype),
            torch.tensor(np.concatenate(numbers)),
            torch.tensor(np.concatenate(index)),
            torch.tensor(np.stack(cells), dtype=dtype),
            torch.tensor(np.stack(pbcs)),
        )
        batch.targets.update(_targets(structures, dtype))
        return batch


def _targets(structures, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Targets of ASE structures, read as a data set's records are (a calculator's
    results, else ``info``/``arrays``)."""
    return record_targets(
        [record_from_atoms(atoms, s) for s, atoms in enumerate(structures)], dtype
    )


def record_targets(records: Sequence[Record], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Energy (S,), forces (N, 3) and stress (S, 3, 3): each that *every* record carries."""
    out = {}
    if all(r.energy is not None for r in records):
        out[F.ENERGY] = torch.tensor([r.energy for r in records], dtype=dtype)
    if all(r.forces is not None for r in records):
        out[F.FORCES] = torch.tensor(np.concatenate([r.forces for r in records]), dtype=dtype)
    if all(r.stress is not None for r in records):
        out[F.STRESS] = torch.tensor(np.stack([r.stress for r in records]), dtype=dtype)
    return out
