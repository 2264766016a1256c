"""Time neighbour-list builders on fcc Cu supercells.

Compares ASE (``ase.neighborlist.neighbor_list``), matscipy, bare vesin and
geocompose's :func:`radius_pairs` (vesin plus int64 casts and the canonical
receiver-sorted order). All produce the same full list of ordered pairs with
shifts; the pair counts are checked equal.

Usage::

    python benchmarks/neighbour_lists.py [--sizes 100 1000 10000 100000] [--cutoff 5.0]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version

import ase.build
import ase.neighborlist
import matscipy.neighbours
import numpy as np
import torch
import vesin

from geocompose.nn.graph.neighbours import radius_pairs

ASE_LIMIT_S = 30.0  # above 10,000 atoms, skip ASE when it would take longer than this
SLOW_RUN_S = 5.0  # runs slower than this get fewer repeats


def cu_supercell(target: int, seed: int) -> ase.Atoms:
    """Cubic fcc Cu repeated n×n×n with 4n³ closest to ``target``, slightly rattled."""
    n = min(range(1, 200), key=lambda m: abs(4 * m**3 - target))
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat((n, n, n))
    # Displacements break the lattice's exact distance ties, so libraries cannot
    # disagree about pairs sitting exactly on the cutoff.
    atoms.positions += np.random.default_rng(seed).normal(scale=0.02, size=atoms.positions.shape)
    return atoms


def timed(fn: Callable[[], int], repeats: int) -> tuple[float, int]:
    """Median wall time in ms over ``repeats`` runs (after one warm-up), and the pair count."""
    start = time.perf_counter()
    pairs = fn()  # warm-up: first-call allocations, lazy imports
    first = time.perf_counter() - start
    times = [first]
    if first < SLOW_RUN_S:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            pairs = fn()
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times), pairs


def builders(atoms: ase.Atoms, cutoff: float) -> dict[str, Callable[[], int]]:
    positions, cell, pbc = atoms.positions, atoms.cell.array, atoms.pbc

    def ase_nl():
        return len(ase.neighborlist.neighbor_list("ijS", atoms, cutoff)[0])

    def matscipy_nl():
        return len(matscipy.neighbours.neighbour_list("ijS", atoms, cutoff)[0])

    def vesin_nl():
        nl = vesin.NeighborList(cutoff=cutoff, full_list=True)
        return len(nl.compute(positions, cell, pbc.tolist(), quantities="ijS")[0])

    def ours():
        return len(radius_pairs(positions, cell, pbc, cutoff)[0])

    return {"ase": ase_nl, "matscipy": matscipy_nl, "vesin": vesin_nl, "geocompose": ours}


def header() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    packages = ["numpy", "torch", "vesin", "ase", "matscipy"]
    return "\n".join(
        [
            (
                f"machine: {platform.platform()} | {platform.machine()} | "
                f"{platform.processor() or 'cpu'} | {os.cpu_count()} CPUs ({cpus} usable), "
                f"torch threads {torch.get_num_threads()}, load average "
                f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} (other work shares these cores)"
            ),
            f"python {sys.version.split()[0]}; "
            + ", ".join(f"{name} {version(name)}" for name in packages),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per library (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(header())
    print(
        f"fcc Cu, a = 3.61 Å, rattled σ = 0.02 Å, cutoff {args.cutoff} Å, full list 'ijS', "
        f"median of {args.repeats} runs after a warm-up (1 run if > {SLOW_RUN_S:.0f} s)\n"
    )
    columns = ["atoms", "pairs", "ase ms", "matscipy ms", "vesin ms", "ours ms",
               "ours/vesin", "ase/ours", "matscipy/ours"]  # fmt: skip
    print(" | ".join(f"{c:>13}" for c in columns))
    print(" | ".join("-" * 13 for _ in columns))

    notes = []
    ase_ms_per_atom = None  # to predict ASE's time at the next size
    for target in args.sizes:
        atoms = cu_supercell(target, args.seed)
        n = len(atoms)
        ms, counts = {}, {}
        for name, fn in builders(atoms, args.cutoff).items():
            if name == "ase" and n > 10_000 and ase_ms_per_atom is not None:
                predicted = ase_ms_per_atom * n / 1e3
                if predicted > ASE_LIMIT_S:
                    notes.append(
                        f"ase skipped at {n} atoms: predicted {predicted:.0f} s (> "
                        f"{ASE_LIMIT_S:.0f} s) from its time per atom at the previous size"
                    )
                    continue
            ms[name], counts[name] = timed(fn, args.repeats)
            if name == "ase":
                ase_ms_per_atom = ms[name] / n
        if len(set(counts.values())) != 1:
            notes.append(f"PAIR COUNTS DIFFER at {n} atoms: {counts}")
        print(row(n, counts["geocompose"], ms), flush=True)
    for note in notes:
        print(f"\nnote: {note}")
    return 0


def row(n: int, pairs: int, ms: dict[str, float]) -> str:
    """One table line; a library that did not run shows as skipped."""

    def time_of(name):
        return f"{ms[name]:13.1f}" if name in ms else f"{'skipped':>13}"

    def ratio(a, b):
        return f"{ms[a] / ms[b]:13.2f}" if a in ms and b in ms else f"{'-':>13}"

    cells = [f"{n:13d}", f"{pairs:13d}", time_of("ase"), time_of("matscipy"), time_of("vesin"),
             time_of("geocompose"), ratio("geocompose", "vesin"), ratio("ase", "geocompose"),
             ratio("matscipy", "geocompose")]  # fmt: skip
    return " | ".join(cells)


if __name__ == "__main__":
    raise SystemExit(main())
