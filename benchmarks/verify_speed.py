"""Time ``geocompose verify``: each shipped blueprint, and the full battery on ASE's EMT.

Targets (issue 15): under 10 s median per blueprint on the 2-core CPU, under 60 s for
the full battery on a 100-atom external calculator.

Each blueprint is verified ``--repeats`` times in one process (default battery, the
CLI's default samples) after one warm-up run that pays for imports and e3nn's code
generation; the median wall time is printed with the load average next to it, since
the machine may be shared. The calculator cases run the full battery (``FULL_CHECKS``:
with diatomic curves and NVE) on ASE's EMT, once on the default samples (molecules of
3-7 atoms, cells of 1-5) and once on 100-atom systems: a Cu cluster of 100 atoms and a
108-atom fcc Cu cell, both rattled. The machine, its load and the versions come first.

Usage::

    python benchmarks/verify_speed.py [--repeats 3] [--threads 1] [blueprint.yaml ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import harness  # the one timing harness, beside this file


def hundred_atoms() -> list:
    """A 100-atom Cu cluster (the atoms of an fcc block nearest its centre) and a
    108-atom fcc Cu cell, both rattled by 0.05 Å."""
    from ase.build import bulk

    block = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(5)
    centre = block.positions.mean(axis=0)
    cluster = block[np.argsort(np.linalg.norm(block.positions - centre, axis=1))[:100]]
    cluster.pbc, cluster.cell = False, None
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    for i, atoms in enumerate((cluster, cell)):
        atoms.rattle(0.05, seed=i)
    return [cluster, cell]


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``repeats`` calls (the harness, one warm-up) and
    the last result. On a shared machine the CPU time (this process's) is the figure
    that load inflates least; on an idle one the two agree."""
    results = []
    timing = harness.measure(lambda: results.append(fn()), repeats, warmup=1)
    return timing.median_ms / 1e3, timing.cpu_ms / 1e3, results[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("blueprints", nargs="*", default=None)
    args = parser.parse_args()
    threads = harness.set_threads(args.threads)

    from geocompose.verification import FULL_CHECKS, verify
    from geocompose.verification.battery import CHECKS

    files = args.blueprints or sorted(str(p) for p in (ROOT / "blueprints").glob("*.yaml"))
    print(harness.header("geocompose verify", ["ase"], threads))
    print(
        f"geocompose verify of {len(files)} blueprints, default battery, "
        f"{threads} thread(s), median of {args.repeats}"
    )
    medians = []
    for file in files:
        median, cpu, report = timed(lambda f=file: verify(f, checks=CHECKS), args.repeats)
        medians.append(median)
        verdict = "verified" if report.passed else "CLAIM VIOLATED"
        print(
            f"  {Path(file).stem:<22} {median:6.2f} s  (cpu {cpu:5.2f} s)  {verdict:<14} "
            f"(load {harness.load_average()})",
            flush=True,
        )
    slowest = max(zip(medians, files))
    print(
        f"  median over blueprints: {statistics.median(medians):.2f} s, "
        f"max {slowest[0]:.2f} s ({Path(slowest[1]).stem}; target < 10 s)"
    )

    from ase.calculators.emt import EMT

    from geocompose.verification.calculator import calculator_subject

    cases = [
        ("EMT, default samples", ["Cu", "Al", "Ni"], None),
        ("EMT, 100-atom Cu cluster + 108-atom Cu cell", ["Cu"], hundred_atoms()),
    ]
    for name, species, structures in cases:
        subject = calculator_subject(EMT(), species=species, cutoff=5.0, name="EMT")
        median, cpu, report = timed(
            lambda s=subject, x=structures: verify(s, checks=FULL_CHECKS, structures=x), 1
        )
        print(
            f"{name}, full battery ({len(report.checks)} rows): {median:.2f} s (cpu {cpu:.2f} s) "
            f"(target < 60 s), {'verified' if report.passed else 'CLAIM VIOLATED'} "
            f"(load {harness.load_average()})"
        )

    print(harness.footer())


if __name__ == "__main__":
    main()
