#!/usr/bin/env python
"""Generate a molecular reference data set with GFN2-xTB tight binding (tblite).

A small organic molecule (ethanol by default) in vacuum is run with Langevin molecular
dynamics at several temperatures on the GFN2-xTB potential energy surface (Bannwarth,
Ehlert and Grimme, J. Chem. Theory Comput. 15, 1652 (2019)) as implemented by tblite;
snapshots are written to extxyz with energy and forces (eV, eV/Å). The molecular
counterpart of ``generate_emt_cu.py``: non-periodic, several elements, a quantum-
mechanical reference. Needs ``pip install tblite`` (a compiled wheel, optional; not a
geocompose dependency).

Usage::

    python scripts/generate_xtb_molecule.py --out ethanol_xtb.extxyz           # 1,200 structures
    python scripts/generate_xtb_molecule.py --small --out ethanol_xtb_small.extxyz  # 150
    # one continuous 500 K trajectory (train on its start, test on its end):
    python scripts/generate_xtb_molecule.py --temperatures 500 --snapshots 1200 --out ethanol_md.extxyz
    python scripts/generate_xtb_molecule.py --molecule biphenyl --temperatures 500 --snapshots 1200

Set ``OMP_NUM_THREADS=1`` on a busy machine: tblite's OpenMP threads slow a 9-atom
molecule down by orders of magnitude when the cores are contended.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import units
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from ase.md.langevin import Langevin

try:  # ASE >= 3.28 names it thermalize_momenta
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # pragma: no cover - older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

FULL = {"temperatures": [300, 600, 900], "snapshots": 400}
SMALL = {"temperatures": [300, 600, 900], "snapshots": 50}


def trajectory(name: str, temperature: float, snapshots: int, every: int, rng: np.random.Generator):
    """``snapshots`` frames of Langevin MD (0.5 fs steps) at ``temperature`` K."""
    from tblite.ase import TBLite

    atoms = molecule(name)
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(
        atoms, 0.5 * units.fs, temperature_K=temperature, friction=0.02, fixcm=False, rng=rng
    )
    dyn.run(every * 20)  # equilibrate
    frames = []
    for _ in range(snapshots):
        dyn.run(every)
        frame = atoms.copy()
        del frame.arrays["momenta"]
        frame.calc = SinglePointCalculator(
            frame, energy=atoms.get_potential_energy(), forces=atoms.get_forces()
        )
        frame.info["temperature_K"] = temperature
        frame.info["time_fs"] = 0.5 * every * (len(frames) + 1)  # since equilibration
        frames.append(frame)
    return frames


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("ethanol_xtb.extxyz"))
    parser.add_argument("--molecule", default="CH3CH2OH", help="an ase.build.molecule name")
    parser.add_argument("--small", action="store_true", help="150 structures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=10, help="MD steps between snapshots")
    parser.add_argument(
        "--temperatures", type=float, nargs="+", help="one trajectory per temperature (K)"
    )
    parser.add_argument("--snapshots", type=int, help="snapshots per trajectory")
    args = parser.parse_args(argv)
    settings = dict(SMALL if args.small else FULL)
    if args.temperatures:
        settings["temperatures"] = args.temperatures
    if args.snapshots is not None:
        settings["snapshots"] = args.snapshots
    rng = np.random.default_rng(args.seed)
    frames = []
    for temperature in settings["temperatures"]:
        frames += trajectory(args.molecule, temperature, settings["snapshots"], args.every, rng)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write(args.out, frames, format="extxyz")
    energies = np.array([f.get_potential_energy() for f in frames])
    forces = np.concatenate([f.get_forces() for f in frames])
    print(
        f"wrote {len(frames)} structures of {args.molecule} to {args.out}; energy "
        f"{energies.min():.3f}..{energies.max():.3f} eV, force RMS {np.sqrt((forces**2).mean()):.3f} eV/Å"
    )


if __name__ == "__main__":
    main()
