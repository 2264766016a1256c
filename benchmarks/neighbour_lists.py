"""Time neighbour-list builders on fcc Cu supercells.

The contenders: bare vesin (``vesin.NeighborList(...).compute(..., "ijS")``, numpy out,
its default copy of the results) and the call a geocompose model makes on a batch it
has not seen, ``graph.topology(batch)``: vesin plus input checks, the canonical
(receiver, sender, shift) order, and the edge index and shifts as torch tensors. Both
use ``--threads`` threads (our radius graph hands torch's thread count to vesin) and
are interleaved by ``benchmarks/harness.py``. With ``--others``, ASE
(``ase.neighborlist.neighbor_list``) and matscipy are timed too. All produce the same
full list of ordered pairs with shifts; the pair counts are checked equal.

Usage::

    python benchmarks/neighbour_lists.py [--sizes 1000 10000 100000] [--threads 1] [--others]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import ase.build
import ase.neighborlist
import numpy as np
import torch
import vesin

import geocompose
from geocompose.types import fields as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

ASE_LIMIT_S = 30.0  # above 10,000 atoms, skip ASE when it would take longer than this
# A model whose only role here is its graph builder (the cutoff is set per run).
SCHNET = {
    "name": "graph-only",
    "symmetry": {"group": "O(3)"},
    "embedding": {"species": ["Cu"], "node": {"type": "learned", "features": 8},
                  "radial": {"type": "gaussian", "num": 4}, "envelope": {"type": "cosine"}},
    "interactions": [{"type": "schnet", "filters": 8}],
    "readout": {"energy": {"type": "sum"}},
}  # fmt: skip


def cu_supercell(target: int, seed: int) -> ase.Atoms:
    """Cubic fcc Cu repeated n×n×n with 4n³ closest to ``target``, slightly rattled."""
    n = min(range(1, 200), key=lambda m: abs(4 * m**3 - target))
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat((n, n, n))
    # Displacements break the lattice's exact distance ties, so libraries cannot
    # disagree about pairs sitting exactly on the cutoff.
    atoms.positions += np.random.default_rng(seed).normal(scale=0.02, size=atoms.positions.shape)
    return atoms


def builders(atoms: ase.Atoms, cutoff: float, threads: int) -> dict[str, Callable[[], int]]:
    """Each library's full neighbour list of ``atoms``; each returns its pair count."""
    positions, cell, pbc = atoms.positions, atoms.cell.array, atoms.pbc
    graph = geocompose.compile(
        {**SCHNET, "graph": {"type": "radius", "cutoff": cutoff}}, dtype=torch.float32
    ).graph
    batch = geocompose.Batch.from_ase(atoms, dtype=torch.float32)

    def ase_nl():
        return len(ase.neighborlist.neighbor_list("ijS", atoms, cutoff)[0])

    def matscipy_nl():
        import matscipy.neighbours  # only for --others: a bench extra, often not installed

        return len(matscipy.neighbours.neighbour_list("ijS", atoms, cutoff)[0])

    def vesin_nl():
        nl = vesin.NeighborList(cutoff=cutoff, full_list=True, n_threads=threads)
        return len(nl.compute(positions, cell, pbc.tolist(), quantities="ijS")[0])

    def ours():
        # What a model call does on a batch it has not seen: a fresh batch (empty cache),
        # its topology as torch tensors (edge index and shifts), checks and sort included.
        return graph.topology(batch.replace())[F.EDGE_INDEX].shape[1]

    return {"ase": ase_nl, "matscipy": matscipy_nl, "vesin": vesin_nl, "ours": ours}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per library (median)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch's and vesin's threads")
    parser.add_argument("--others", action="store_true", help="also time ASE and matscipy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    threads = harness.set_threads(args.threads)

    print(harness.header("Neighbour lists: our radius graph against bare vesin", ["ase", "matscipy"], threads))
    print(
        f"fcc Cu, a = 3.61 Å, rattled σ = 0.02 Å, cutoff {args.cutoff} Å, full list 'ijS'; "
        f"ours and vesin: {harness.timing_note(args.repeats, args.warmup)}; ASE and matscipy "
        f"(--others) timed alone, ASE skipped where predicted over {ASE_LIMIT_S:.0f} s\n"
    )
    print("| atoms | pairs | vesin ms [q1-q3] | ours ms [q1-q3] | ours/vesin | CPU ours/vesin "
          "| matscipy ms | ase ms |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    ase_ms_per_atom = None  # to predict ASE's time at the next size
    for target in args.sizes:
        atoms = cu_supercell(target, args.seed)
        n = len(atoms)
        fns = builders(atoms, args.cutoff, threads)
        counts = {name: fn() for name, fn in fns.items() if name in ("vesin", "ours")}
        timing = harness.interleaved(
            {"vesin": fns["vesin"], "ours": fns["ours"]}, args.repeats, args.warmup
        )
        others = {}
        for name in ("matscipy", "ase") if args.others else ():
            if name == "ase" and ase_ms_per_atom is not None:
                predicted = ase_ms_per_atom * n / 1e3
                if predicted > ASE_LIMIT_S:
                    notes.append(f"ase skipped at {n} atoms: predicted {predicted:.0f} s")
                    continue
            counts[name] = fns[name]()
            others[name] = harness.measure(fns[name], repeats=1 if n > 10_000 else 3, warmup=0)
            if name == "ase":
                ase_ms_per_atom = others[name].median_ms / n
        if len(set(counts.values())) != 1:
            notes.append(f"PAIR COUNTS DIFFER at {n} atoms: {counts}")
        ours, bare = timing["ours"], timing["vesin"]
        cells = [f"{others[k].median_ms:.1f}" if k in others else "-" for k in ("matscipy", "ase")]
        print(f"| {n:,} | {counts['ours']:,} | {bare} | {ours} | {harness.ratio(ours, bare):.2f} "
              f"| {ours.cpu_ms / bare.cpu_ms:.2f} | {' | '.join(cells)} |", flush=True)  # fmt: skip
    for note in notes:
        print(f"\nnote: {note}")
    print(harness.footer())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
