"""The edge tensor product, Clebsch–Gordan against SO(2) (eSCN), per l_max.

For each ``l_max`` in 1..6, at fixed channels and edges: node features
``C x (0e + 1o + 2e + ...)`` up to ``l_max``, edge harmonics up to ``l_max``, every
``uvu`` path into outputs up to ``l_max``, per-edge weights. The two contenders are
what ``tensor_product.implementation`` selects:

* ``cg``: :class:`~geocompose.nn.interaction.spherical.ChannelwiseProduct`, one
  output segment per path (the default);
* ``so2``: :class:`~geocompose.nn.ops.so2.SO2Product` of the same paths with those
  differing only in ``l2`` summed (:func:`~geocompose.nn.ops.paths.merge_second_orders`),
  *including* each edge's rotation and its Wigner D matrices (a model computes those
  once per run and shares them between layers; here every call pays them).

The SO(2) output has fewer segments (the sum over ``l2``), so the linear mix that
follows it in a block is smaller too; that saving is not counted here. Timed: forward,
and forward + backward to the features, the weights and the edge vectors (what forces
need). float32, 1 thread, interleaved calls (benchmarks/harness.py), ratio so2 / cg.

    python benchmarks/so2_crossover.py [--channels 16] [--edges 2000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from e3nn import o3

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

from geocompose.nn.interaction.spherical import (
    ChannelwiseProduct,
    component_major,
    exact_constants,
)
from geocompose.nn.ops.paths import enumerate_paths, merge_second_orders
from geocompose.nn.ops.so2 import SO2Product, edge_rotations, wigner_d_matrices


def contenders(l_max: int, channels: int, edges: int, backward: bool) -> dict:
    """The two products on the same random edges, as zero-argument callables."""
    node = o3.Irreps([(channels, (l, (-1) ** l)) for l in range(l_max + 1)])
    sh_irreps = o3.Irreps.spherical_harmonics(l_max)
    plan = enumerate_paths(node, sh_irreps, max_l_out=l_max)
    merged = merge_second_orders(plan)
    with exact_constants():  # float64 constants, cast as a compiled model is
        cg, so2 = ChannelwiseProduct(plan).float(), SO2Product(merged).float()
    gen = torch.Generator().manual_seed(l_max)
    vectors = torch.randn(edges, 3, generator=gen).requires_grad_(backward)
    x = component_major(torch.randn(edges, node.dim, generator=gen), node).requires_grad_(backward)
    w = torch.randn(edges, plan.weight_numel, generator=gen).requires_grad_(backward)

    def run_cg():
        sh = o3.spherical_harmonics(list(range(l_max + 1)), vectors, normalize=True)
        out = cg(x, sh, w)
        if backward:
            out.sum().backward()

    def run_so2():
        sh = o3.spherical_harmonics(list(range(l_max + 1)), vectors, normalize=True)
        wigner = wigner_d_matrices(edge_rotations(vectors), so2.l_max)
        out = so2(x, sh, w, wigner)
        if backward:
            out.sum().backward()

    return {"cg": run_cg, "so2": run_so2}, len(plan.paths), len(merged.irreps_out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--edges", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--l-max", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    args = parser.parse_args()
    threads = harness.set_threads(1)
    print(harness.header("Edge tensor product: Clebsch-Gordan vs SO(2)", [], threads))
    print(f"{args.channels} channels per irrep, {args.edges:,} edges, float32")
    note = harness.timing_note(args.repeats, args.warmup)
    print(note.replace("ours / theirs", "so2 / cg").replace("ours faster", "so2 faster"))
    print()
    print("| l_max | paths | so2 segments | pass | cg ms [q1-q3] | so2 ms [q1-q3] | so2/cg |")
    print("|---:|---:|---:|---|---:|---:|---:|")
    for l_max in args.l_max:
        for backward, kind in ((False, "forward"), (True, "forward+backward")):
            fns, paths, segments = contenders(l_max, args.channels, args.edges, backward)
            times = harness.interleaved(fns, args.repeats, args.warmup)
            print(
                f"| {l_max} | {paths} | {segments} | {kind} | {times['cg']} | {times['so2']} "
                f"| {harness.ratio(times['so2'], times['cg']):.2f} |",
                flush=True,
            )
    print()
    print(harness.footer())


if __name__ == "__main__":
    main()
