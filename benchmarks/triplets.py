"""Count and time triplets and quadruplets on fcc Cu cells (higher-order topology).

For each cell: edges at the cutoff; triplets k→j→i (candidates and after dropping the
backtracking pair); the dense padded layout DimeNet/GemNet contract over; quadruplets
l→k→j→i counted in O(E) at the full cutoff (never built there: the index alone would
take the printed memory) and built at a torsion cutoff. Times are medians of repeated
builds after a warm-up; memory is what the integer index tensors occupy.

Usage::

    python benchmarks/triplets.py [--atoms 64 512] [--cutoff 5.0] [--torsion-cutoff 3.0] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import ase.build
import numpy as np
import torch

from geocompose.nn.graph import higher_order as H
from geocompose.nn.graph.neighbours import radius_pairs

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

REPEATS = 5


def cu_cell(atoms: int, seed: int = 0) -> ase.Atoms:
    """Cubic fcc Cu, a = 3.61 Å, repeated (n, n, 2n) so that 8 n^3 = ``atoms`` (64, 512, ...)."""
    n = round((atoms / 8) ** (1 / 3))
    if 8 * n**3 != atoms:
        raise SystemExit(f"--atoms must be 8 n^3 (64, 512, 1728, ...), got {atoms}")
    cell = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat((n, n, 2 * n))
    cell.rattle(0.02, seed=seed)
    return cell


def timed(fn, repeats: int = REPEATS):
    """Median ms of ``fn`` (the harness, one warm-up) and its last result."""
    result = []
    timing = harness.measure(lambda: result.append(fn()), repeats, warmup=1)
    return timing.median_ms, result[-1]


def mib(count: int, rows: int) -> str:
    return f"{count * rows * 8 / 2**20:,.1f} MiB"


def report(atoms: ase.Atoms, cutoff: float, torsion_cutoff: float) -> None:
    r, s, sh = radius_pairs(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    edge_index = torch.tensor(np.stack([s, r]))
    shifts = torch.tensor(sh)
    lengths = torch.tensor(
        np.linalg.norm(atoms.positions[s] - atoms.positions[r] + sh @ atoms.cell.array, axis=1)
    )
    n = len(atoms)
    short = lengths < torsion_cutoff
    print(
        f"\n## {n} Cu atoms, cutoff {cutoff} Å: {edge_index.shape[1]:,} edges ({edge_index.shape[1] / n:.1f} per atom)"
    )

    counts = H.count_higher_order(edge_index, n)
    t_reverse, reverse = timed(lambda: H.reverse_edges(edge_index, shifts, n))
    t_trip, triplets = timed(lambda: H.triplet_index(edge_index, shifts, n, reverse=reverse))
    # Built afresh each time (a model keeps it in the batch's cache, built once).
    t_layout, layout = timed(lambda: H.triplet_layout(edge_index, shifts, n))
    print(
        f"triplets        {triplets.shape[1]:>14,}  (candidates {counts['triplets_raw']:,}; index {mib(triplets.shape[1], 2)})"
    )
    print(f"  reverse edges {t_reverse:10.2f} ms")
    print(f"  triplet index {t_trip:10.2f} ms")
    slots = layout.mask.numel() if layout.dense else 0
    kind = (
        f"dense, {slots:,} slots = {slots / max(triplets.shape[1], 1):.2f} x T"
        if layout.dense
        else "sparse"
    )
    print(f"  layout, all   {t_layout:10.2f} ms  (reverse + triplets + padded layout; {kind})")
    print(
        f"quadruplets at {cutoff} Å: {counts['quadruplets_raw']:>14,} candidates, index would be {mib(counts['quadruplets_raw'], 3)} (counted, not built)"
    )
    counts_short = H.count_higher_order(edge_index, n, short)
    t_quad, quads = timed(
        lambda: H.quadruplet_index(edge_index, shifts, n, triplets, short, reverse=reverse)
    )
    print(
        f"quadruplets at torsion cutoff {torsion_cutoff} Å: {quads.shape[1]:,} "
        f"(candidates {counts_short['quadruplets_raw']:,}; index {mib(quads.shape[1], 3)}), built in {t_quad:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--torsion-cutoff", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    threads = harness.set_threads(args.threads)
    print(harness.header("Triplets and quadruplets", [], threads))
    print(f"times: median of {REPEATS} builds after one warm-up")
    for count in args.atoms:
        report(cu_cell(count), args.cutoff, args.torsion_cutoff)
    print(harness.footer())


if __name__ == "__main__":
    main()
