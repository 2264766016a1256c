"""Compiled DimeNet++ (blueprints/dimenet_pp.yaml) against PyTorch Geometric's DimeNetPlusPlus.

Identical hyperparameters: the blueprint with PyG's default widths restored (hidden and
node features 128, int_emb 64, out_emb 256; the rest is already PyG's: 4 blocks,
basis_emb 8, 7 spherical x 6 radial, cutoff 5 Å, envelope exponent 5, 1/2 residual
layers before/after the skip, 3 output layers, swish), float32, on fcc Cu cells of 64
and 512 atoms and on a small molecule.

Both models get the same precomputed topology: the periodic radius graph and the
triplets (PyG's ``DimeNet.forward`` builds neither for periodic cells — its
``radius_graph`` ignores the cell — so PyG's own blocks are driven through a forward
that takes edge vectors, as in PyG's ``forward`` after its graph step). Geometry
(distances, angles, bases) is inside the timed region for both; topology is not
(geocompose memoises it on the batch, PyG's is passed in). Timed by
``benchmarks/harness.py``: medians of interleaved calls (order alternating) after
warm-up, in eval mode, ratio ours / PyG; "forward" runs under ``no_grad``,
"forward+forces" differentiates the energy w.r.t. positions.

Weights are not copied: the two compute different functions of the same shape. PyG's
bases carry DimeNet's envelope ``1/x + a x^(p-1) + ...`` (a 1/d factor on the
spherical basis), ours a smooth polynomial envelope without the 1/d; and our energy
also reads the species embedding. The widths are PyG's (see ``WEIGHTS_NOTE``).

Usage::

    python benchmarks/dimenet.py [--threads 1] [--repeats 7] [--device cpu] [--only ethanol]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import ase.build
import torch

import geocompose
from geocompose.nn.graph import higher_order as H
from geocompose.types import fields as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

BLUEPRINT = Path(__file__).parents[1] / "blueprints" / "dimenet_pp.yaml"
WEIGHTS_NOTE = (
    "every block's weights have PyG's shapes except two, which the architectures fix: "
    "our output blocks end in 256->128 (they add to the node features, read out by one "
    "128->1 linear) where PyG's end in 256->1, and our species table has 5 rows where "
    "PyG's has 95; both are per-atom work, small beside the per-edge and per-triplet work"
)


def structures() -> dict[str, ase.Atoms]:
    out = {}
    for n, label in ((2, "Cu 64"), (4, "Cu 512")):
        cell = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat((n, n, 2 * n))
        cell.rattle(0.02, seed=0)
        out[label] = cell
    out["ethanol"] = ase.build.molecule("CH3CH2OH")
    return out


def pyg_model():
    from torch_geometric.nn.models import DimeNetPlusPlus

    return DimeNetPlusPlus(
        hidden_channels=128,
        out_channels=1,
        num_blocks=4,
        int_emb_size=64,
        basis_emb_size=8,
        out_emb_channels=256,
        num_spherical=7,
        num_radial=6,
        cutoff=5.0,
        envelope_exponent=5,
        num_before_skip=1,
        num_after_skip=2,
        num_output_layers=3,
    )


def pyg_energy(model, z, positions, topology):
    """PyG's DimeNet++ forward from its graph step on, with periodic edge vectors."""
    senders, receivers, offsets, kj, ji, num_nodes = topology
    vectors = positions[senders] - positions[receivers] + offsets  # x_j - x_i + shift @ cell
    dist = vectors.norm(dim=-1)
    # PyG's DimeNet++ angle: pos_ij = x_i - x_j = -v_ji, pos_jk = x_j - x_k = -v_kj.
    pos_ij, pos_jk = -vectors[ji], -vectors[kj]
    angle = torch.atan2(
        torch.cross(pos_ij, pos_jk, dim=1).norm(dim=-1), (pos_ij * pos_jk).sum(dim=-1)
    )
    rbf = model.rbf(dist)
    sbf = model.sbf(dist, angle, kj)
    x = model.emb(z, rbf, receivers, senders)
    energy = model.output_blocks[0](x, rbf, receivers, num_nodes=num_nodes)
    for interaction, output in zip(model.interaction_blocks, model.output_blocks[1:]):
        x = interaction(x, rbf, sbf, kj, ji)
        energy = energy + output(x, rbf, receivers, num_nodes=num_nodes)
    return energy.sum()


def runs(ours_energy, ours_full, reference, batch, topology, sync) -> dict:
    """The timed callables: pass name -> (geocompose, PyG)."""
    z = batch.atomic_numbers

    def ours_forward():
        with torch.no_grad():
            ours_energy(batch)
        sync()

    def ours_forces():
        ours_full(batch)["forces"]
        sync()

    def pyg_forward():
        with torch.no_grad():
            pyg_energy(reference, z, batch.positions, topology)
        sync()

    def pyg_forces():
        positions = batch.positions.detach().requires_grad_(True)
        energy = pyg_energy(reference, z, positions, topology)
        torch.autograd.grad(energy, positions)
        sync()

    return {"forward": (ours_forward, pyg_forward), "forward+forces": (ours_forces, pyg_forces)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="+", help="structure labels to run, e.g. ethanol 'Cu 64'")
    args = parser.parse_args()
    threads = harness.set_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    spec = geocompose.load(BLUEPRINT).blueprint.model_dump(mode="json")
    spec["embedding"]["node"]["features"] = 128
    spec["interactions"][0].update(hidden=128, int_emb=64, out_emb=256)  # PyG's defaults
    ours_full = geocompose.compile(spec, dtype=torch.float32, seed=0).to(device).eval()
    ours_energy = harness.energy_only(spec, ours_full)
    reference = pyg_model().to(device).eval()
    weights = (
        sum(p.numel() for p in ours_full.parameters()),
        sum(p.numel() for p in reference.parameters()),
    )
    print(harness.header(f"DimeNet++: geocompose against PyG, {device}", ["torch_geometric"],
                         threads))  # fmt: skip
    print(f"float32; {harness.timing_note(args.repeats, args.warmup)}")
    print(f"weights: geocompose {weights[0]:,}, PyG {weights[1]:,} ({WEIGHTS_NOTE})\n")
    rows = []
    for label, atoms in structures().items():
        if args.only and label not in args.only:
            continue
        batch = geocompose.Batch.from_ase(atoms, dtype=torch.float32).to(device=device)
        topo = ours_full.graph.topology(batch)
        edge_index, shifts = topo[F.EDGE_INDEX], topo[F.EDGE_SHIFTS]
        layout = H.triplet_layout(edge_index, shifts, batch.num_atoms)
        offsets = shifts.to(torch.float32) @ batch.cell[0]
        topology = (edge_index[0], edge_index[1], offsets, layout.kj, layout.ji, batch.num_atoms)

        passes = runs(ours_energy, ours_full, reference, batch, topology, sync)
        for name, (mine, theirs) in passes.items():
            t = harness.interleaved({"pyg": theirs, "ours": mine}, args.repeats, args.warmup)
            kind = f"{name} ({layout.kj.numel():,} triplets)"
            rows.append(harness.Row(label, batch.num_atoms, edge_index.shape[1], kind, t["pyg"],
                                    t["ours"]))  # fmt: skip
            print(f"  {label} {name}: ours/PyG {harness.ratio(t['ours'], t['pyg']):.2f}",
                  flush=True)  # fmt: skip
    print(harness.table(rows, "PyG"))
    print(harness.footer())


if __name__ == "__main__":
    main()
