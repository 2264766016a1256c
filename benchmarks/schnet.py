"""Time geocompose's compiled SchNet against PyTorch Geometric's SchNet.

Both models have the same hyperparameters (128 features and filters, 6 interactions,
50 Gaussians, 5 Å cosine cutoff, an ssp head with 64 hidden units) and, after
copying our weights into PyG's modules, compute the same function: the script checks
that energies and forces agree before timing anything.

Both run on the same precomputed graph. Our topology (edge index and lattice shifts,
periodic images included) is built once and cached on the batch; PyG gets the same
``edge_index``, and its edge lengths are computed in torch from the positions and the
shift vectors inside the timed region, as ours are, so forces flow through them. PyG's
own ``SchNet.forward`` builds edges with ``radius_graph``, which ignores periodic
images, so the PyG side calls SchNet's submodules (embedding, distance expansion,
interactions, lin1/act/lin2 head, sum pooling) directly.

Timed: ``forward`` (energy only, under ``torch.inference_mode``: our blueprint without
its forces readout, PyG's modules as they are) and ``forward+forces`` (forces = -dE/dx
by autograd in both, in eval mode), timed by ``benchmarks/harness.py``: median wall and
CPU time over ``--repeats`` calls after ``--warmup`` calls, the two models interleaved
in one process, ratio ours / PyG.

Usage::

    python benchmarks/schnet.py [--repeats 30] [--warmup 5] [--threads 1] [--compile]

``--compile`` adds our model through ``GeometricModel.torch_compile`` (inductor) as a
third contender in the same interleaved rounds (compiled at its first call, before
timing; minutes on the 2-core machine).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import ase.build
import ase.data
import numpy as np
import torch
from torch_geometric.nn.models import SchNet

import geocompose
from geocompose.nn.embedding.species import LearnedEmbedding
from geocompose.nn.interaction.schnet import SchNetInteraction
from geocompose.nn.readout.pooling import SumReadout
from geocompose.types import fields as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

BLUEPRINT = Path(__file__).resolve().parents[1] / "blueprints" / "schnet.yaml"
HYPER = {
    "hidden_channels": 128,
    "num_filters": 128,
    "num_interactions": 6,
    "num_gaussians": 50,
    "cutoff": 5.0,
}


def structures(seed: int) -> dict[str, ase.Atoms]:
    """Ethanol, and fcc Cu 64- and 512-atom cells rattled by 0.02 Å (fixed seed)."""
    rng = np.random.default_rng(seed)
    out = {"ethanol (9 atoms)": ase.build.molecule("CH3CH2OH")}
    # The cubic fcc cell holds 4 atoms: 2x2x4 gives 64, 4x4x8 gives 512.
    for reps in ((2, 2, 4), (4, 4, 8)):
        atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True) * reps
        atoms.positions += rng.normal(scale=0.02, size=atoms.positions.shape)
        out[f"Cu fcc ({len(atoms)} atoms, PBC)"] = atoms
    return out


def pyg_twin(model: geocompose.GeometricModel) -> SchNet:
    """PyG's SchNet with our weights copied in, so both compute the same function."""
    pyg = SchNet(**HYPER).to(model.dtype).eval()
    (embedding,) = [b for b in model.blocks if isinstance(b, LearnedEmbedding)]
    interactions = [b for b in model.blocks if isinstance(b, SchNetInteraction)]
    (head,) = [b for b in model.blocks if isinstance(b, SumReadout)]
    assert len(interactions) == len(pyg.interactions)
    with torch.no_grad():
        for index, symbol in enumerate(model.species):
            z = ase.data.atomic_numbers[symbol]
            pyg.embedding.weight[z] = embedding.table.weight[index]
        for ours, theirs in zip(interactions, pyg.interactions):
            theirs.mlp.load_state_dict(ours.filter.state_dict())
            theirs.conv.lin1.load_state_dict(ours.node_in.state_dict())
            theirs.conv.lin2.load_state_dict(ours.node_out[0].state_dict())
            theirs.lin.load_state_dict(ours.node_out[2].state_dict())
        pyg.lin1.load_state_dict(head.head[0].state_dict())
        pyg.lin2.load_state_dict(head.head[2].state_dict())
    return pyg


def eager_copy(model: geocompose.GeometricModel) -> geocompose.GeometricModel:
    """Another instance of ``model`` (same weights), to compile while ``model`` stays eager."""
    twin = geocompose.compile(BLUEPRINT, dtype=model.dtype, seed=0)
    twin.load_state_dict(model.state_dict())
    return twin.eval()


def pyg_energy(pyg: SchNet, z, positions, edge_index, shifts, cell, batch, num_structures):
    """PyG's SchNet forward on a precomputed (periodic) graph; (B,) energies."""
    senders, receivers = edge_index
    # Edge vectors x_j - x_i + n @ cell in torch, so forces flow through the lengths.
    offsets = torch.einsum("ek,ekc->ec", shifts, cell[batch[receivers]])
    vectors = positions[senders] - positions[receivers] + offsets
    edge_weight = vectors.norm(dim=-1)
    edge_attr = pyg.distance_expansion(edge_weight)
    h = pyg.embedding(z)
    for interaction in pyg.interactions:
        h = h + interaction(h, edge_index, edge_weight, edge_attr)
    h = pyg.lin2(pyg.act(pyg.lin1(h)))
    return pyg.readout(h, batch, dim=0, dim_size=num_structures).view(-1)


def run_case(name, atoms, model, energy_model, pyg, warmup, repeats, compiled=None):
    """Rows of one structure; ``compiled`` = (energy model, forces model) through
    ``torch_compile`` adds a row per pass, compiled against PyG in the same rounds."""
    dtype = model.dtype
    batch = geocompose.Batch.from_ase([atoms], dtype=dtype)
    topology = model.graph.topology(batch)  # built once, cached on the batch
    # Both of our models have the same graph builder, so they share the cached topology.
    assert energy_model.graph.topology(batch) is topology
    edge_index = topology[F.EDGE_INDEX]
    shifts = topology[F.EDGE_SHIFTS].to(dtype)
    z, cell, index = batch.atomic_numbers, batch.cell, batch.batch
    num_structures = batch.num_structures

    def ours_energy():
        return energy_model(batch)["energy"]

    def ours_forces():
        out = model(batch)
        return out["energy"], out["forces"]

    def theirs_energy():
        return pyg_energy(pyg, z, batch.positions, edge_index, shifts, cell, index, num_structures)

    def theirs_forces():
        positions = batch.positions.detach().requires_grad_(True)
        energy = pyg_energy(pyg, z, positions, edge_index, shifts, cell, index, num_structures)
        (grad,) = torch.autograd.grad(energy.sum(), positions)
        return energy, -grad

    # Same function: energies and forces agree (float32 round-off only).
    e_ours, f_ours = ours_forces()
    e_theirs, f_theirs = theirs_forces()
    e_plain = ours_energy()
    finite = all(bool(torch.isfinite(t).all()) for t in (e_ours, f_ours, e_theirs, f_theirs))
    e_ours, f_ours, e_theirs, f_theirs = (t.detach() for t in (e_ours, f_ours, e_theirs, f_theirs))
    d_energy = float((e_ours.view(-1) - e_theirs).abs().max() / e_theirs.abs().max().clamp(min=1.0))
    d_forces = float((f_ours - f_theirs).abs().max())
    assert finite, f"{name}: non-finite energy or forces"
    assert d_energy < 1e-4, f"{name}: energies differ (rel {d_energy:.2e})"
    assert d_forces < 1e-4, f"{name}: forces differ (max {d_forces:.2e})"
    assert torch.allclose(e_plain.view(-1), e_ours.view(-1)), f"{name}: energy-only model differs"

    forward_fns = {"pyg": theirs_energy, "ours": ours_energy}
    forces_fns = {"pyg": theirs_forces, "ours": ours_forces}
    if compiled is not None:
        energy_compiled, forces_compiled = compiled
        forward_fns["compiled"] = lambda: energy_compiled(batch)["energy"]
        forces_fns["compiled"] = lambda: forces_compiled(batch)["forces"]
        # Compiling happens at the first call: outside the timed rounds, checked equal.
        torch.testing.assert_close(forces_fns["compiled"](), f_ours, rtol=1e-4, atol=1e-5)
    with torch.inference_mode():
        forward = harness.interleaved(forward_fns, repeats, warmup)
    forces = harness.interleaved(forces_fns, repeats, warmup)
    edges = edge_index.shape[1]
    rows = []
    for kind, timing in (("forward", forward), ("forward+forces", forces)):
        rows.append(harness.Row(name, len(atoms), edges, kind, timing["pyg"], timing["ours"]))
        if compiled is not None:
            rows.append(harness.Row(name, len(atoms), edges, f"{kind}, compiled", timing["pyg"],
                                    timing["compiled"]))  # fmt: skip
    check = (
        f"{name}: energy {float(e_ours.view(-1)[0]):.4f} (finite), vs PyG max |dE|/|E| "
        f"{d_energy:.1e}, max |dF| {d_forces:.1e}"
    )
    return rows, check


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per case (median)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls before timing")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rattled cells")
    parser.add_argument(
        "--compile", action="store_true", help="also time ours through torch_compile"
    )
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend")
    args = parser.parse_args(argv)
    threads = harness.set_threads(args.threads)

    model = geocompose.compile(BLUEPRINT, dtype=torch.float32, seed=0).eval()
    energy_model = harness.energy_only(BLUEPRINT, model)
    pyg = pyg_twin(model)
    compiled = None
    if args.compile:
        compiled = (
            harness.energy_only(BLUEPRINT, model).torch_compile(args.compile_backend),
            eager_copy(model).torch_compile(args.compile_backend),
        )

    print(harness.header("SchNet: geocompose against PyG", ["torch_geometric"], threads))
    print(f"float32; {harness.timing_note(args.repeats, args.warmup)}\n")
    rows, checks = [], []
    for name, atoms in structures(args.seed).items():
        case_rows, check = run_case(
            name, atoms, model, energy_model, pyg, args.warmup, args.repeats, compiled
        )
        rows += case_rows
        checks.append(check)
    print(harness.table(rows, "PyG"))
    print("\nsame function (our weights copied into PyG), float32 round-off only:")
    print("\n".join(f"  {line}" for line in checks))
    print(harness.footer())


if __name__ == "__main__":
    main()
