"""Before/after of the radius graph's batch layer: main's code against this tree's.

Loads ``geocompose/nn/graph/{neighbours,base}.py`` from another checkout (``--before``,
default /work/main) under other module names and times, interleaved by the harness,
bare vesin, the old ``_topology`` and the new one on the same fcc Cu cells.

    python benchmarks/ab_radius_graph.py [--before /work/main] [--sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch

import geocompose
from geocompose.nn.graph.base import GraphBuilder
from geocompose.nn.graph.neighbours import radius_pairs

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from neighbour_lists import builders, cu_supercell


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=Path("/work/main"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    threads = harness.set_threads(args.threads)
    graph = args.before / "geocompose" / "nn" / "graph"
    old_neighbours = load(graph / "neighbours.py", "before_neighbours")
    old_base = load(graph / "base.py", "before_base")
    print(harness.header(f"radius graph: {args.before} (before) against this tree", [], threads))
    print(harness.timing_note(args.repeats, 1))
    print("| atoms | vesin ms | before ms | after ms | before/vesin | after/vesin | after/before "
          "| CPU after/vesin | CPU after/before |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        atoms = cu_supercell(size, 0)
        fns = builders(atoms, 5.0, threads)
        batch = geocompose.Batch.from_ase(atoms, dtype=torch.float32)
        old_pairs = lambda p, c, b: old_neighbours.radius_pairs(p, c, b, 5.0)
        new_pairs = lambda p, c, b: radius_pairs(p, c, b, 5.0)
        # The same method of both trees, without the batch cache around it.
        before = lambda b=batch, p=old_pairs: old_base.GraphBuilder._topology(None, b, p)
        after = lambda b=batch, p=new_pairs: GraphBuilder._topology(None, b, p)
        t = harness.interleaved(
            {"vesin": fns["vesin"], "before": before, "after": after}, args.repeats
        )
        v, b, a = t["vesin"], t["before"], t["after"]
        print(f"| {len(atoms):,} | {v} | {b} | {a} | {harness.ratio(b, v):.2f} "
              f"| {harness.ratio(a, v):.2f} | {harness.ratio(a, b):.2f} "
              f"| {a.cpu_ms / v.cpu_ms:.2f} | {a.cpu_ms / b.cpu_ms:.2f} |", flush=True)  # fmt: skip
    print(harness.footer())


if __name__ == "__main__":
    main()
