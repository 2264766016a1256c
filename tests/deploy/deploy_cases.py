"""Structures the engine tests run on."""

import numpy as np
from ase.build import bulk, molecule


def rattled_copper(repeat=(2, 1, 1), seed: int = 3):
    """Cubic fcc Cu (4 atoms per cell) repeated, rattled so forces are not zero."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
    atoms.rattle(0.05, seed=seed)
    return atoms


def triclinic_copper():
    """Rattled Cu (16 atoms) in a sheared, strained cell: a triclinic box."""
    atoms = rattled_copper((2, 2, 1), seed=5)
    shear = np.array([[1.0, 0.04, 0.02], [0.0, 1.03, -0.05], [0.0, 0.0, 0.97]])
    atoms.set_cell(atoms.cell.array @ shear, scale_atoms=True)
    return atoms


def copper_molecule():
    """A Cu5 cluster (methane's shape, scaled to Cu-Cu ~2.4 Å), rattled."""
    cluster = molecule("CH4")
    cluster.symbols[:] = "Cu"
    cluster.positions *= 2.2  # Cu-Cu ~2.4 Å: within the cutoff, not on top of each other
    cluster.rattle(0.03, seed=1)
    return cluster
