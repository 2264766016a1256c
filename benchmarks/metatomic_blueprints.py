"""Which shipped blueprints export to metatomic, and how closely the file matches.

For every ``blueprints/*.yaml``: compile it in float64 with seeded weights, wrap it as a
potential, export it as ``geocompose export --format metatomic`` does (traced on two
drawn structures), load the file with metatomic-ase's ``MetatomicCalculator`` and
compare energy, forces and stress with our ASE calculator on a drawn triclinic cell
and a drawn molecule (other sizes than the trace). A blueprint that cannot export is
listed with its one-line reason. Run::

    python benchmarks/metatomic_blueprints.py [NAME ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def measure(path: Path, folder: Path) -> dict:
    import geocompose
    from geocompose.data.batch import Batch
    from geocompose.data.structures import random_cell, random_molecule
    from geocompose.deploy.metatomic import metatomic_deviation, save_metatomic
    from geocompose.errors import GeocomposeError
    from geocompose.train import Potential

    row = {"blueprint": path.stem}
    try:
        model = geocompose.compile(geocompose.load(path).blueprint, dtype=torch.float64, seed=0)
        potential = Potential(model).eval()
        species, cutoff = list(model.species), model.trace.cutoff
        rng = np.random.default_rng(0)
        example = Batch.from_ase([random_cell(rng, species), random_molecule(rng, species, cutoff)])
        start = time.perf_counter()
        saved = save_metatomic(potential, folder / f"{path.stem}.pt", example)
        row["export_s"] = time.perf_counter() - start
        check = Batch.from_ase(
            [random_cell(rng, species, max_atoms=8), random_molecule(rng, species, cutoff)]
        )
        energy = float(potential(check)["energy"].abs().max())
        deviation = metatomic_deviation(potential, saved, check)
        row.update({"energy_scale": energy, **deviation})
    except GeocomposeError as err:
        row["refused"] = " ".join(str(err).split())[:200]
    return row


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="blueprint names (default: all shipped)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    paths = [ROOT / "blueprints" / f"{n}.yaml" for n in args.names] or sorted(
        (ROOT / "blueprints").glob("*.yaml")
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for path in paths:
            row = measure(path, Path(folder))
            print(json.dumps(row), flush=True)
            rows.append(row)
    print("| blueprint | exports | export s | max ΔE / |E| | max ΔF (eV/Å) | max Δσ (eV/Å³) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        if "refused" in r:
            print(f"| {r['blueprint']} | no: {r['refused']} | | | | |")
        else:
            relative = r["energy"] / max(r["energy_scale"], 1e-300)
            print(
                f"| {r['blueprint']} | yes | {r['export_s']:.0f} | {relative:.1e} | "
                f"{r['forces']:.1e} | {r.get('stress', float('nan')):.1e} |"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
