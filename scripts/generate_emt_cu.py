#!/usr/bin/env python
"""Generate a reference data set of fcc copper with ASE's EMT potential (no download).

Periodic cells of fcc Cu (2x2x2 conventional cubic cells, 32 atoms) are run with
Langevin molecular dynamics at several temperatures and lattice strains; snapshots are
written to extxyz with EMT's energy, forces and stress. EMT (effective medium theory,
Jacobsen, Stoltze and Norskov, Surf. Sci. 366, 394 (1996)) is a real many-body
potential with a cheap analytic force, so the set is a physical reference a model can
be held to, generated in seconds to minutes on a laptop.

Usage::

    python scripts/generate_emt_cu.py --out cu_emt.extxyz            # ~3,000 structures
    python scripts/generate_emt_cu.py --small --out cu_emt_small.extxyz  # 200 structures
    python scripts/generate_emt_cu.py --snapshots 25 --deformed 100 --out cu_emt_sanity.extxyz

``--deformed N`` adds N cells under random symmetric strains (each component up to
``--max-strain``, shears included) with 300 K thermal motion: the isotropic strains
alone teach a model the bulk modulus but not the shear constants (C44, C11 - C12).

The shipped sample ``geocompose/data/examples/cu_emt_small.extxyz`` is ``--small``
with the default seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from ase.md.langevin import Langevin

try:  # ASE >= 3.28 names it thermalize_momenta
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # pragma: no cover - older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

FULL = {"temperatures": [300, 600, 900, 1200], "strains": [-0.02, 0.0, 0.02], "snapshots": 250}
SMALL = {"temperatures": [300, 800, 1300], "strains": [-0.02, 0.0, 0.02], "snapshots": 23}


def trajectory(
    temperature: float,
    strain: float | np.ndarray,
    snapshots: int,
    every: int,
    rng: np.random.Generator,
    repeat: int,
):
    """``snapshots`` frames of Langevin MD at ``temperature`` K on a cell scaled by
    ``1 + strain``, one every ``every`` steps of 5 fs after ``every * 4`` steps of
    equilibration. A (3, 3) ``strain`` deforms the cell by ``1 + strain`` instead."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
    deformation = np.eye(3) + (strain if np.ndim(strain) == 2 else strain * np.eye(3))
    atoms.set_cell(atoms.cell.array @ deformation, scale_atoms=True)
    atoms.calc = EMT()
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(
        atoms, 5 * units.fs, temperature_K=temperature, friction=0.02, fixcm=False, rng=rng
    )
    dyn.run(every * 4)
    frames = []
    for _ in range(snapshots):
        dyn.run(every)
        frame = atoms.copy()
        del frame.arrays["momenta"]  # not a target; a third less file
        frame.calc = SinglePointCalculator(
            frame,
            energy=atoms.get_potential_energy(),
            forces=atoms.get_forces(),
            stress=atoms.get_stress(),
        )
        frame.info["temperature_K"] = temperature
        frame.info["strain"] = strain if np.ndim(strain) == 0 else np.asarray(strain).ravel()
        frames.append(frame)
    return frames


def random_strain(rng: np.random.Generator, largest: float) -> np.ndarray:
    """A symmetric strain tensor with every component uniform in [-largest, largest]."""
    strain = rng.uniform(-largest, largest, (3, 3))
    return (strain + strain.T) / 2


def generate(
    settings: dict, seed: int, every: int, repeat: int, deformed: int = 0, max_strain: float = 0.03
):
    rng = np.random.default_rng(seed)
    frames = []
    for temperature in settings["temperatures"]:
        for strain in settings["strains"]:
            frames += trajectory(temperature, strain, settings["snapshots"], every, rng, repeat)
    # Deformed cells: 2 snapshots of 300 K motion each (one strain per short trajectory).
    for start in range(0, deformed, 2):
        strain = random_strain(rng, max_strain)
        frames += trajectory(300, strain, min(2, deformed - start), every, rng, repeat)
    return frames


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("cu_emt.extxyz"))
    parser.add_argument(
        "--small", action="store_true", help="about 200 structures (the shipped sample)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=10, help="MD steps between snapshots")
    parser.add_argument(
        "--repeat", type=int, default=2, help="conventional cells per axis (2: 32 atoms)"
    )
    parser.add_argument(
        "--snapshots", type=int, help="snapshots per temperature and strain (default 250, --small 23)"
    )
    parser.add_argument(
        "--deformed", type=int, default=0, help="add this many randomly strained cells (300 K)"
    )
    parser.add_argument(
        "--max-strain", type=float, default=0.03, help="largest strain component of --deformed"
    )
    args = parser.parse_args(argv)
    settings = dict(SMALL if args.small else FULL)
    if args.snapshots is not None:
        settings["snapshots"] = args.snapshots
    frames = generate(
        settings, args.seed, args.every, args.repeat, args.deformed, args.max_strain
    )
    if args.small:
        frames = frames[:200]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write(args.out, frames, format="extxyz")
    energies = np.array([f.get_potential_energy() / len(f) for f in frames])
    forces = np.concatenate([f.get_forces() for f in frames])
    print(
        f"wrote {len(frames)} structures ({sum(len(f) for f in frames)} atoms) to {args.out}; "
        f"energy/atom {energies.min():.3f}..{energies.max():.3f} eV, force RMS {np.sqrt((forces**2).mean()):.3f} eV/Å"
    )


if __name__ == "__main__":
    main()
