"""Where a trained Cu model's energy and stress errors lie: by volume per atom.

The EMT Cu set (``scripts/generate_emt_cu.py``) holds cells at three lattice strains, so
its test cells fall into three volumes per atom. For each volume this prints the mean and
spread of the per-atom energy error and the mean error of the pressure-like part of the
stress (a third of the stress tensor's trace). An error that moves with the volume and
is flat within each volume is a wrong energy-volume curve, not noise.

The same script scores either engine's model on the same cells: a geocompose checkpoint
(``best.pt``) with this project's python, a mace-torch model with mace's python and
``--engine mace-torch`` (mace-torch needs e3nn 0.4.4, so it lives in its own venv)::

    python benchmarks/volume_errors.py RUN/cu/test.extxyz RUN/cu/mace-geocompose-5/mace/best.pt
    /work/venvs/mace/bin/python benchmarks/volume_errors.py RUN/cu/test.extxyz \\
        RUN/cu/mace-reference-5/mace.model --engine mace-torch

(``RUN`` is ``train_head_to_head.py --out RUN``.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def calculator(model: str, engine: str):
    if engine == "mace-torch":
        import torch

        # benchmarks/mace.py would shadow mace-torch's package.
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
        torch.serialization.add_safe_globals([slice])  # e3nn 0.4.4's constants.pt
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=model, device="cpu", default_dtype="float32")
    from geocompose.ase import Calculator

    return Calculator(model)


def volume_table(frames, calc) -> list[str]:
    """One line per volume per atom (rounded to 0.1 Å^3), then the totals."""
    volume, energy_error, pressure_error = [], [], []
    for atoms in frames:
        energy, stress = atoms.get_potential_energy(), atoms.get_stress(voigt=False)
        atoms.calc = calc
        volume.append(round(atoms.get_volume() / len(atoms), 1))
        energy_error.append(1e3 * (atoms.get_potential_energy() - energy) / len(atoms))
        pressure_error.append(1e3 * np.trace(atoms.get_stress(voigt=False) - stress) / 3)
    volume, energy_error, pressure_error = map(np.asarray, (volume, energy_error, pressure_error))
    lines = ["V/atom (Å^3)  cells  dE/atom mean ± std (meV)  trace(dS)/3 mean (meV/Å^3)"]
    for v in np.unique(volume):
        at = volume == v
        lines.append(f"{v:12.1f}  {at.sum():5d}  {energy_error[at].mean():9.1f} ± "
                     f"{energy_error[at].std():4.1f}  {pressure_error[at].mean():14.1f}")  # fmt: skip
    lines.append(f"{'all':>12}  {len(volume):5d}  {energy_error.mean():9.1f} ± "
                 f"{energy_error.std():4.1f}  {pressure_error.mean():14.1f}"
                 f"   (energy MAE {np.abs(energy_error).mean():.1f} meV/atom)")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cells", help="extxyz with reference energy and stress (the test split)")
    parser.add_argument("model", help="geocompose checkpoint, or a mace-torch model file")
    parser.add_argument("--engine", choices=["geocompose", "mace-torch"], default="geocompose")
    args = parser.parse_args(argv)
    from ase.io import read

    frames = read(args.cells, index=":")
    print(f"{args.engine}: {args.model} on {len(frames)} cells of {args.cells}")
    print("\n".join(volume_table(frames, calculator(args.model, args.engine))))


if __name__ == "__main__":
    main()
