"""One structure as plain arrays, read from an ``ase.Atoms`` and checked for shape.

Targets are looked up on the attached calculator's results first (what ASE's extxyz
reader fills for ``energy``, ``forces``, ``stress``), then in ``info`` and ``arrays``
(custom names such as ``REF_energy``). Stress is stored as a symmetric 3x3 tensor
whichever of ASE's layouts (Voigt 6, 9 or 3x3) the file used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocompose.errors import StructureError
from geocompose.types import fields as F

__all__ = ["Record", "record_from_atoms"]


@dataclass(frozen=True)
class Record:
    """One structure as plain arrays.

    Args:
        positions: (n, 3) float64, Å.
        numbers: (n,) int64 atomic numbers.
        cell: (3, 3) float64, rows are lattice vectors (zeros for a molecule).
        pbc: (3,) bool.
        energy: total energy in eV, or None.
        forces: (n, 3) float64 eV/Å, or None.
        stress: (3, 3) float64 eV/Å^3 (ASE's sign), or None.
    """

    positions: np.ndarray
    numbers: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.numbers)


def _result(atoms, key: str):
    """``key`` from the attached calculator's results, else ``info``/``arrays``."""
    calc = atoms.calc
    results = getattr(calc, "results", None) or {}
    if key in results:
        return results[key]
    if key in atoms.info:
        return atoms.info[key]
    return atoms.arrays.get(key)


def _stress_3x3(value, index: int) -> np.ndarray:
    from ase.stress import voigt_6_to_full_3x3_stress

    array = np.asarray(value, dtype=np.float64)
    if array.shape == (6,):
        return voigt_6_to_full_3x3_stress(array)
    if array.shape == (9,):
        return array.reshape(3, 3)
    if array.shape == (3, 3):
        return array
    raise StructureError(
        f"structure {index}: stress has shape {array.shape}; expected 6 (Voigt), 9 or 3x3"
    )


def record_from_atoms(
    atoms, index: int, keys: tuple[str, str, str] = (F.ENERGY, F.FORCES, F.STRESS)
) -> Record:
    """A :class:`Record` of one ``Atoms``; targets looked up under ``keys``.

    Raises:
        StructureError: shapes that do not match the atom count, non-finite values.
    """
    n = len(atoms)
    energy_key, forces_key, stress_key = keys
    energy = _result(atoms, energy_key)
    forces = _result(atoms, forces_key)
    stress = _result(atoms, stress_key)
    if energy is not None:
        try:
            energy = float(np.asarray(energy, dtype=np.float64).reshape(()))
        except (TypeError, ValueError):
            raise StructureError(
                f"structure {index}: '{energy_key}' is not one number: {energy!r}"
            ) from None
    if forces is not None:
        forces = np.asarray(forces, dtype=np.float64)
        if forces.shape != (n, 3):
            raise StructureError(
                f"structure {index}: '{forces_key}' has shape {forces.shape} but the structure "
                f"has {n} atoms; expected ({n}, 3)"
            )
    if stress is not None:
        stress = _stress_3x3(stress, index)
    return Record(
        positions=np.asarray(atoms.positions, dtype=np.float64).copy(),
        numbers=np.asarray(atoms.numbers, dtype=np.int64).copy(),
        cell=np.asarray(atoms.cell.array, dtype=np.float64).copy(),
        pbc=np.asarray(atoms.pbc, dtype=bool).copy(),
        energy=energy,
        forces=forces,
        stress=stress,
    )
