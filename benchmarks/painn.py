"""Time geocompose's compiled PaiNN against schnetpack's PaiNN (the authors' code).

Both models have the hyperparameters of ``blueprints/painn.yaml`` (128 features, 3
interactions, 20 Bessel functions, 5 Å cosine cutoff, a 128 → 64 → 1 SiLU head summed
per structure). Before timing, our weights are copied into schnetpack's modules and
the script checks, in float64, that both compute the same energies and forces; for
that check only, our smooth vector norm ``sqrt(|v|^2 + 1) - 1`` is swapped for
schnetpack's ``sqrt(|v|^2 + 1e-8)`` (the one intended difference of the two functions).

Both run on the same precomputed graph: our topology (edge index and lattice shifts,
periodic images included) is built once and cached on the batch; schnetpack gets the
same pairs as ``idx_i`` (receivers), ``idx_j`` (senders) and ``Rij = x_j - x_i + n @ cell``
computed in torch inside the timed region, as ours are, so forces flow through them.

schnetpack 2.1.1 pins torch 2.4, and its top-level package fails to import on newer
torch (``schnetpack.data`` imports ``T_co``, a private name torch removed), so install it without dependencies into a folder of its own and put
that folder on the path (nothing in the project's venv changes)::

    pip install --no-deps --target /work/venvs/spk-lib schnetpack==2.1.1
    PYTHONPATH=/work/venvs/spk-lib python benchmarks/painn.py [--repeats 20] [--warmup 3] [--threads 1]

Only ``schnetpack.representation``, ``schnetpack.nn`` and ``schnetpack.properties`` are
loaded (the package ``__init__`` is bypassed); they need nothing beyond torch.

Timed: ``forward`` (energy, under ``torch.inference_mode``: our blueprint without its
forces readout) and ``forward+forces`` (forces = -dE/dx by autograd, eval mode).
Timed by ``benchmarks/harness.py``: median wall and CPU time of interleaved calls,
ratio ours / schnetpack, float32.

``--before PATH`` adds another checkout's geocompose (e.g. main before a change) as a
third contender, run in a child process with ``PATH`` first on its ``PYTHONPATH`` and
interleaved call by call (:class:`harness.Worker`); a second table gives this tree
against it (ratio after / before)::

    PYTHONPATH=/work/venvs/spk-lib python benchmarks/painn.py --threads 1 --before /work/main
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import types
from pathlib import Path

import ase.data
import torch
from torch import nn

import geocompose
from geocompose.nn.interaction import painn as painn_module
from geocompose.types import fields as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from schnet import structures

BLUEPRINT = Path(__file__).resolve().parents[1] / "blueprints" / "painn.yaml"
FEATURES, INTERACTIONS, NUM_RBF, CUTOFF = 128, 3, 20, 5.0


def schnetpack_modules():
    """``(PaiNN, BesselRBF, CosineCutoff)`` without executing schnetpack/__init__.py."""
    if "schnetpack" not in sys.modules:
        spec = importlib.util.find_spec("schnetpack")
        if spec is None:
            raise SystemExit("schnetpack is not installed; see this script's docstring")
        package = types.ModuleType("schnetpack")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["schnetpack"] = package
    from schnetpack.nn import BesselRBF, CosineCutoff
    from schnetpack.representation.painn import PaiNN

    return PaiNN, BesselRBF, CosineCutoff


class SchnetpackPaiNN(nn.Module):
    """schnetpack's representation plus the same energy head as our blueprint."""

    def __init__(self):
        super().__init__()
        PaiNN, BesselRBF, CosineCutoff = schnetpack_modules()
        self.representation = PaiNN(
            n_atom_basis=FEATURES,
            n_interactions=INTERACTIONS,
            radial_basis=BesselRBF(n_rbf=NUM_RBF, cutoff=CUTOFF),
            cutoff_fn=CosineCutoff(CUTOFF),
        )
        self.head = nn.Sequential(nn.Linear(FEATURES, 64), nn.SiLU(), nn.Linear(64, 1))

    def forward(self, z, positions, edge_index, shifts, cell, batch, num_structures):
        senders, receivers = edge_index
        offsets = torch.einsum("ek,ekc->ec", shifts, cell[batch[receivers]])
        inputs = {
            "_atomic_numbers": z,
            "_Rij": positions[senders] - positions[receivers] + offsets,
            "_idx_i": receivers,
            "_idx_j": senders,
        }
        q = self.representation(inputs)["scalar_representation"]
        atomic = self.head(q)
        return (
            torch.zeros(num_structures, 1, dtype=atomic.dtype).index_add_(0, batch, atomic).view(-1)
        )


def _reorder(weight: torch.Tensor, order: tuple[int, int, int]) -> torch.Tensor:
    """Rows of a (3F, ...) tensor in our chunk order → the reference's chunk order."""
    chunks = torch.split(weight, FEATURES, dim=0)
    return torch.cat([chunks[i] for i in order], dim=0)


def copy_weights(model: geocompose.GeometricModel, theirs: SchnetpackPaiNN) -> None:
    """Our weights into schnetpack's modules (same function up to the norm)."""
    embedding, edge, blocks, head = (
        model.blocks[1],
        model.blocks[2],
        model.blocks[3:6],
        model.blocks[6],
    )
    rep = theirs.representation
    # Message chunks: ours (s, from v_j, from direction); schnetpack (s, direction, v_j).
    message = (0, 2, 1)
    # Update chunks: ours (a_vv, a_sv, a_ss); schnetpack (ss, vv, sv).
    update = (2, 0, 1)
    # Our Bessel basis carries sqrt(2/c); schnetpack's does not: fold it into the filter.
    prefactor = edge.radial.prefactor
    with torch.no_grad():
        for index, symbol in enumerate(model.species):
            rep.embedding.weight[ase.data.atomic_numbers[symbol]] = embedding.table.weight[index]
        filter_w = [_reorder(b.filter.weight * prefactor, message) for b in blocks]
        filter_b = [_reorder(b.filter.bias, message) for b in blocks]
        # schnetpack builds its frequencies in float32 (arange * pi / c); use ours.
        rep.radial_basis.freqs.copy_(edge.radial.freqs)
        rep.filter_net.weight.copy_(torch.cat(filter_w))
        rep.filter_net.bias.copy_(torch.cat(filter_b))
        for ours, inter, mix in zip(blocks, rep.interactions, rep.mixing):
            inter.interatomic_context_net[0].load_state_dict(ours.phi[0].state_dict())
            inter.interatomic_context_net[1].weight.copy_(_reorder(ours.phi[2].weight, message))
            inter.interatomic_context_net[1].bias.copy_(_reorder(ours.phi[2].bias, message))
            mix.mu_channel_mix.weight.copy_(torch.cat([ours.mix_v.weight, ours.mix_u.weight]))
            mix.intraatomic_context_net[0].load_state_dict(ours.gate[0].state_dict())
            mix.intraatomic_context_net[1].weight.copy_(_reorder(ours.gate[2].weight, update))
            mix.intraatomic_context_net[1].bias.copy_(_reorder(ours.gate[2].bias, update))
        theirs.head[0].load_state_dict(head.head[0].state_dict())
        theirs.head[2].load_state_dict(head.head[2].state_dict())


def same_function(atoms_by_name) -> list[str]:
    """float64, schnetpack's norm swapped in: energies and forces must agree."""
    model = geocompose.compile(BLUEPRINT, dtype=torch.float64, seed=0).eval()
    theirs = SchnetpackPaiNN().double().eval()
    copy_weights(model, theirs)
    reference_norm = painn_module.vector_norm
    # schnetpack's norm; our layer passes its own scale, which this one has no use for
    painn_module.vector_norm = lambda v, scale=None: torch.sqrt((v * v).sum(dim=-1) + 1e-8)
    lines = []
    try:
        for name, atoms in atoms_by_name.items():
            batch = geocompose.Batch.from_ase([atoms], dtype=torch.float64)
            out = {k: v.detach() for k, v in model(batch).items()}
            topo = model.graph.topology(batch)
            positions = batch.positions.detach().requires_grad_(True)
            energy = theirs(
                batch.atomic_numbers,
                positions,
                topo[F.EDGE_INDEX],
                topo[F.EDGE_SHIFTS].double(),
                batch.cell,
                batch.batch,
                1,
            )
            (grad,) = torch.autograd.grad(energy.sum(), positions)
            energy = energy.detach()
            d_e = float(
                (out["energy"].view(-1) - energy).abs().max() / energy.abs().max().clamp(min=1.0)
            )
            d_f = float((out["forces"] + grad).abs().max())
            if d_e > 1e-10 or d_f > 1e-10:
                raise SystemExit(f"{name}: not the same function (dE {d_e:.1e}, dF {d_f:.1e})")
            lines.append(
                f"{name}: energy {float(energy):.4f}, max |dE|/|E| {d_e:.1e}, max |dF| {d_f:.1e}"
            )
    finally:
        painn_module.vector_norm = reference_norm
    return lines


def run_case(name, atoms, model, energy_model, theirs, warmup, repeats, before=None):
    batch = geocompose.Batch.from_ase([atoms], dtype=torch.float32)
    topo = model.graph.topology(batch)
    args = (
        batch.atomic_numbers,
        batch.positions,
        topo[F.EDGE_INDEX],
        topo[F.EDGE_SHIFTS].float(),
        batch.cell,
        batch.batch,
        1,
    )

    def theirs_forces():
        positions = batch.positions.detach().requires_grad_(True)
        energy = theirs(args[0], positions, *args[2:])
        (grad,) = torch.autograd.grad(energy.sum(), positions)
        return energy, -grad

    forward = {"schnetpack": lambda: theirs(*args), "ours": lambda: energy_model(batch)["energy"]}
    forces = {"schnetpack": theirs_forces, "ours": lambda: model(batch)}
    if before is not None:
        forward["before"], forces["before"] = (before.call(f"{name}/{kind}") for kind in PASSES)
    with torch.inference_mode():
        forward = harness.interleaved(forward, repeats, warmup)
    forces = harness.interleaved(forces, repeats, warmup)
    edges = topo[F.EDGE_INDEX].shape[1]
    rows = []  # (ours against schnetpack, ours against before or None) per pass
    for kind, timing in zip(PASSES, (forward, forces)):
        against = [harness.Row(name, len(atoms), edges, kind, timing[reference], timing["ours"])
                   for reference in ("schnetpack", "before") if reference in timing]  # fmt: skip
        rows.append((against[0], against[1] if len(against) > 1 else None))
    return rows


PASSES = ("forward", "forward+forces")


def serve_before(seed: int) -> None:
    """The ``--before`` child: this process imports the other checkout's geocompose;
    it times our blueprint there, named ``"{structure}/{pass}"``."""
    model = geocompose.compile(BLUEPRINT, dtype=torch.float32, seed=0).eval()
    energy_model = harness.energy_only(BLUEPRINT, model)
    fns = {}
    for name, atoms in structures(seed).items():
        batch = geocompose.Batch.from_ase([atoms], dtype=torch.float32)
        model.graph.topology(batch)

        def forward(batch=batch):
            with torch.inference_mode():
                return energy_model(batch)["energy"]

        fns[f"{name}/forward"] = forward
        fns[f"{name}/forward+forces"] = lambda batch=batch: model(batch)
    harness.serve(fns, {"geocompose": geocompose.__file__})


def before_worker(path: Path, threads: int, seed: int) -> harness.Worker:
    """The ``--before`` contender: this script in a child with ``path`` first on its path."""
    env_path = os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])
    command = ["env", f"PYTHONPATH={env_path}", sys.executable, __file__, "--serve-before",
               "--threads", str(threads), "--seed", str(seed)]  # fmt: skip
    worker = harness.Worker(command)
    if Path(worker.info["geocompose"]).resolve().parents[1] != path.resolve():
        raise SystemExit(f"--before {path}: the child imported {worker.info['geocompose']}")
    return worker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--before", type=Path, help="another checkout to time as 'before'")
    parser.add_argument("--serve-before", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = harness.set_threads(args.threads)
    if args.serve_before:
        serve_before(args.seed)
        return
    cases = structures(args.seed)
    checks = same_function(cases)

    model = geocompose.compile(BLUEPRINT, dtype=torch.float32, seed=0).eval()
    energy_model = harness.energy_only(BLUEPRINT, model)
    theirs = SchnetpackPaiNN().float().eval()
    copy_weights(model, theirs)

    print(harness.header("PaiNN: geocompose against schnetpack", ["schnetpack"], threads))
    print(f"float32; {harness.timing_note(args.repeats, args.warmup)}\n")
    before = before_worker(args.before, threads, args.seed) if args.before else None
    rows = []
    for name, atoms in cases.items():
        rows += run_case(name, atoms, model, energy_model, theirs, args.warmup, args.repeats,
                         before)  # fmt: skip
    if before is not None:
        before.close()
    print(harness.table([spk for spk, _ in rows], "spk"))
    if before is not None:
        print(f"\nthis tree against {args.before} (ratio = after / before), the same calls:\n")
        print(harness.table([b for _, b in rows], "before"))
    print("\nsame function (our weights in schnetpack, its 1e-8 norm in ours), float64:")
    print("\n".join(f"  {line}" for line in checks))
    print(harness.footer())


if __name__ == "__main__":
    main()
