#!/usr/bin/env python
"""NVE molecular dynamics with trained geocompose models: how well is energy conserved?

Starts from a 32-atom fcc copper cell of the shipped EMT sample, draws Maxwell-Boltzmann
velocities at --temperature, and integrates Newton's equations with velocity Verlet
(no thermostat) for each model given, and for EMT itself as the reference. In exact
arithmetic the total energy E = E_pot + E_kin is constant when the forces are the
negative gradient of E_pot; with a finite time step it fluctuates but does not drift.

Reported for each model: the drift, the slope of a least-squares line through the
total energy per atom against time (meV/atom/ps), and the largest excursion
|E(t) - E(0)| per atom (meV/atom). A model with direct forces (a vector head, not
-dE/dx) has no energy its forces conserve, so its total energy drifts: this measures
what giving up conservation costs on the same data.

    python examples/md_nve.py runs/painn/best.pt runs/painn_direct/best.pt --steps 2000

Each positional argument is a checkpoint written by ``geocompose train``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase import units
from ase.calculators.emt import EMT
from ase.io import read
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

from geocompose.ase import Calculator

try:  # ASE >= 3.28 names it thermalize_momenta
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

SAMPLE = Path(__file__).parents[1] / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"


def run_nve(
    calc, start, temperature: float, steps: int, dt_fs: float, seed: int, every: int = 10
) -> dict:
    """Velocity-Verlet NVE from ``start``; total energy per atom sampled every ``every`` steps."""
    atoms = start.copy()
    atoms.calc = calc
    thermalize_momenta(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
    Stationary(atoms)  # no centre-of-mass drift
    dyn = VelocityVerlet(atoms, dt_fs * units.fs)
    n = len(atoms)
    times, totals, temperatures = [], [], []

    def record():
        times.append(dyn.nsteps * dt_fs / 1000.0)  # ps
        totals.append(atoms.get_total_energy() / n)
        temperatures.append(atoms.get_temperature())

    record()
    start_clock = time.perf_counter()
    for _ in range(steps // every):
        dyn.run(every)
        record()
    elapsed = time.perf_counter() - start_clock
    times, totals = np.array(times), np.array(totals)
    slope = np.polyfit(times, totals, 1)[0] if len(times) > 1 else float("nan")
    return {
        "drift_mev_per_atom_per_ps": 1000.0 * slope,
        "max_excursion_mev_per_atom": 1000.0 * float(np.abs(totals - totals[0]).max()),
        "mean_temperature_K": float(np.mean(temperatures)),
        "final_temperature_K": float(temperatures[-1]),
        "simulated_ps": float(times[-1]),
        "steps_per_s": steps / elapsed if elapsed > 0 else float("nan"),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoints", nargs="*", help="checkpoints written by `geocompose train`")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--dt", type=float, default=2.0, help="time step in fs (default: %(default)s)"
    )
    parser.add_argument("--temperature", type=float, default=600.0, help="initial temperature in K")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-emt", action="store_true", help="skip the EMT reference run")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)

    start = read(SAMPLE, index=0)
    start.calc = None
    runs = {} if args.no_emt else {"EMT (reference)": EMT()}
    for path in args.checkpoints:
        calc = Calculator(path)
        kind = "conservative" if calc.conservative else "direct forces"
        runs[f"{calc.potential.model.name} ({kind})"] = calc
    results = {}
    print(
        f"NVE, {len(start)} Cu atoms, {args.steps} steps of {args.dt} fs from {args.temperature:.0f} K"
    )
    print(
        f"{'model':40s} {'drift meV/atom/ps':>18s} {'max |dE| meV/atom':>18s} {'<T> K':>7s} {'steps/s':>8s}"
    )
    for name, calc in runs.items():
        r = run_nve(calc, start, args.temperature, args.steps, args.dt, args.seed)
        results[name] = r
        print(
            f"{name:40s} {r['drift_mev_per_atom_per_ps']:18.3f} {r['max_excursion_mev_per_atom']:18.3f} "
            f"{r['mean_temperature_K']:7.0f} {r['steps_per_s']:8.1f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
