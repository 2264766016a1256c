"""Time ``geocompose verify``: each shipped blueprint, and the full battery on ASE's EMT.

Each blueprint is verified ``--repeats`` times in one process (default battery,
``--samples`` as the CLI's default) after one warm-up run that pays for imports and
e3nn's code generation; the median wall time is printed with the load average next
to it, since the machine may be shared. The calculator case runs the full battery
(``FULL_CHECKS``: with diatomic curves and NVE) on ASE's EMT with the default sample
sizes (molecules of 3-7 atoms, cells of 1-5).

Usage::

    python benchmarks/verify_speed.py [--repeats 3] [--threads 1] [blueprint.yaml ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f}"


def timed(fn, repeats: int) -> tuple[float, object]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("blueprints", nargs="*", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from geocompose.verification import FULL_CHECKS, verify
    from geocompose.verification.battery import CHECKS

    files = args.blueprints or sorted(str(p) for p in (ROOT / "blueprints").glob("*.yaml"))
    print(f"geocompose verify, default battery, {args.threads} thread(s), median of {args.repeats}")
    medians = []
    for file in files:
        median, report = timed(lambda f=file: verify(f, checks=CHECKS), args.repeats)
        medians.append(median)
        verdict = "verified" if report.passed else "CLAIM VIOLATED"
        print(f"  {Path(file).stem:<22} {median:6.2f} s  {verdict:<14} ({load()})", flush=True)
    print(f"  median over blueprints: {statistics.median(medians):.2f} s, max {max(medians):.2f} s")

    from ase.calculators.emt import EMT

    from geocompose.verification.calculator import calculator_subject

    subject = calculator_subject(EMT(), species=["Cu", "Al", "Ni"], cutoff=5.0, name="EMT")
    median, report = timed(lambda: verify(subject, checks=FULL_CHECKS), 1)
    print(
        f"EMT, full battery ({len(report.checks)} rows): {median:.2f} s, "
        f"{'verified' if report.passed else 'CLAIM VIOLATED'} ({load()})"
    )


if __name__ == "__main__":
    main()
