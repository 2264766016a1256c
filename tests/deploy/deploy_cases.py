"""Structures the engine tests run on."""

from ase.build import bulk


def rattled_copper(repeat=(2, 1, 1), seed: int = 3):
    """Cubic fcc Cu (4 atoms per cell) repeated, rattled so forces are not zero."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
    atoms.rattle(0.05, seed=seed)
    return atoms
