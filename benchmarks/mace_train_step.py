"""One MACE training step, geocompose against mace-torch, on the same batch (issues 16, 19).

The head-to-head training benchmark (``train_head_to_head.py``) times whole trainings;
this script isolates the step they both repeat, so that a change to geocompose's MACE
can be measured in a minute: forward, forces by ``autograd.grad(create_graph=True)``,
the loss ``1 x per-atom energy MSE + 10 x force MSE``, its backward, gradient clipping
at 10 and an optimizer step (lr 1e-2), on one batch of 8 rattled ethanol molecules
(72 atoms) with fixed random targets; ``--data cu``: 8 EMT Cu cells of 32 atoms from the
shipped example (cells like the head-to-head Cu row's), the loss with ``1 x stress MSE`` too
and stress by the strain derivative on both sides. Models: ``blueprints/mace.yaml`` as
the head-to-head benchmark trains it (the data's species, learned 32-vector embedding)
and mace-torch's ``ScaleShiftMACE`` with ``train_cu.py``'s mapping of that blueprint
(2 layers ``32x0e + 32x1o``, correlation 3, max_ell 2, 8 Bessel, radial MLP [64],
avg_num_neighbors 8, MLP_irreps 16x0e), float32.

mace-torch runs in its own venv as a :class:`harness.Worker` (this script under its
python with ``--engine mace-torch``), called one step at a time, interleaved with ours.
``--profile`` then runs torch.profiler over a few steps of each and prints, for both,
the op count per step and the ops by self CPU time. Both last layers write ``32x0e`` only
(mace.yaml's ``last_writes_scalars``); ``--full-last-layer`` makes geocompose's write
``32x0e + 32x1o`` (``mace-full-last-layer.yaml``, mace.yaml's layout until 2026-12-04:
the same energy function, with the vectors nothing reads).

Run: ``python benchmarks/mace_train_step.py --threads 1 --repeats 20 [--data cu] [--profile]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness

DEFAULT_REFERENCE = "/work/venvs/mace/bin/python"
STRUCTURES = 8
LR, CLIP, ENERGY_WEIGHT, FORCES_WEIGHT = 1e-2, 10.0, 1.0, 10.0  # train_head_to_head's HYPER
STRESS_WEIGHT = 1.0  # where the data has stress, as there
CUTOFF = 5.0
CU_EXAMPLE = HERE.parent / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"


def ethanol_batch():
    """8 rattled ethanol molecules with seeded random energy and force targets."""
    import ase.build
    import numpy as np
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(0)
    frames = []
    for k in range(STRUCTURES):
        atoms = ase.build.molecule("CH3CH2OH")
        atoms.rattle(0.05, seed=k)
        atoms.calc = SinglePointCalculator(
            atoms, energy=float(rng.normal()), forces=rng.normal(size=(len(atoms), 3))
        )
        frames.append(atoms)
    return frames


def copper_batch():
    """The shipped example's first 8 EMT Cu cells (32 atoms each), with their stress."""
    import ase.io

    return ase.io.read(CU_EXAMPLE, index=f":{STRUCTURES}")


def has_stress(frames) -> bool:
    return all(a.pbc.all() and "stress" in a.calc.results for a in frames)


def geocompose_step(frames, pair: str, path: Path | None = None, lr: float = LR,
                    fused: bool = False):  # fmt: skip
    """geocompose's training step on ``frames`` for ``pair``'s blueprint as the
    head-to-head benchmark trains it (or the one at ``path``), through the trainer's own
    Potential and Objective (the loss of geocompose.train.loss), AdamW at ``lr``
    (``fused``: the trainer's one-kernel step). Returns the step and its edge and weight
    counts."""
    import torch
    from train_head_to_head import geocompose_blueprint

    import geocompose
    from geocompose.train.loss import LossWeights, Objective
    from geocompose.train.potential import Potential

    species = sorted({a for f in frames for a in f.get_chemical_symbols()})
    model = geocompose.compile(geocompose_blueprint(pair, species, path), dtype=torch.float32,
                               seed=0)  # fmt: skip
    stress = has_stress(frames)
    weights = LossWeights(ENERGY_WEIGHT, FORCES_WEIGHT, STRESS_WEIGHT if stress else 0.0)
    objective = Objective(Potential(model), weights, stress=stress)
    objective.train()
    batch = geocompose.Batch.from_ase(frames, dtype=torch.float32)
    parameters = list(objective.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0, fused=fused)
    step = harness.optimizer_step(lambda: objective(batch)[0], parameters, optimizer, CLIP)
    edges = int(model.graph.topology(batch)["edge_index"].shape[1])
    weights = sum(p.numel() for p in model.parameters())
    return step, {"edges": edges, "weights": weights}


def ours_step(frames, full_last_layer: bool = False):
    """:func:`geocompose_step` for MACE. ``full_last_layer``: the model is
    ``mace-full-last-layer.yaml``, whose last layer writes ``32x0e + 32x1o`` (mace.yaml's
    and mace-torch's write ``32x0e`` only)."""
    variant = Path(__file__).parent / "mace-full-last-layer.yaml"
    return geocompose_step(frames, "mace", variant if full_last_layer else None)


def serve_reference(frames, profile_steps: int, rows: int) -> None:
    """mace-torch's training step, inside the mace venv (a :class:`harness.Worker` child)."""
    channel, sys.stdout = sys.stdout, sys.stderr  # replies only on the real stdout
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # benchmarks/mace.py
    import numpy as np
    import torch

    torch.serialization.add_safe_globals([slice])  # e3nn 0.4.4's constants.pt
    from e3nn import o3
    from mace import data, modules, tools
    from mace.tools import torch_geometric

    torch.manual_seed(0)
    z = sorted({int(n) for f in frames for n in f.numbers})
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    model = modules.ScaleShiftMACE(
        r_max=CUTOFF, num_bessel=8, num_polynomial_cutoff=5, max_ell=2,
        interaction_cls=block, interaction_cls_first=block, num_interactions=2,
        num_elements=len(z), hidden_irreps=o3.Irreps("32x0e + 32x1o"),
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(len(z)), avg_num_neighbors=8.0,
        atomic_numbers=z, correlation=3, gate=torch.nn.functional.silu, radial_MLP=[64],
        atomic_inter_scale=1.0, atomic_inter_shift=0.0,
    ).float()  # fmt: skip
    model.train()
    table = tools.AtomicNumberTable(z)
    graphs = [
        data.AtomicData.from_config(data.config_from_atoms(a), z_table=table, cutoff=CUTOFF)
        for a in frames
    ]
    loader = torch_geometric.dataloader.DataLoader(graphs, batch_size=len(graphs), shuffle=False)
    batch = {
        k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v
        for k, v in next(iter(loader)).to_dict().items()
    }
    energy = torch.tensor([a.get_potential_energy() for a in frames], dtype=torch.float32)
    forces = torch.tensor(np.concatenate([a.get_forces() for a in frames]), dtype=torch.float32)
    atoms = torch.tensor([len(a) for a in frames], dtype=torch.float32)
    stress = None
    if has_stress(frames):
        stress = torch.tensor(np.stack([a.get_stress(voigt=False) for a in frames])).float()
    parameters = list(model.parameters())
    optimizer = torch.optim.Adam(parameters, lr=LR, amsgrad=True)  # run_train's

    def loss():
        # A fresh dict per step: mace-torch's stress path writes strained positions and
        # cell into the dict it is given.
        out = model(
            dict(batch), training=True, compute_force=True, compute_stress=stress is not None
        )
        total = ENERGY_WEIGHT * (((out["energy"] - energy) / atoms) ** 2).mean()
        total = total + FORCES_WEIGHT * ((out["forces"] - forces) ** 2).mean()
        if stress is not None:
            total = total + STRESS_WEIGHT * ((out["stress"] - stress) ** 2).mean()
        return total

    step = harness.optimizer_step(loss, parameters, optimizer, CLIP)

    def profiled():
        print("## mace-torch training step, torch.profiler", file=sys.stderr)
        print(harness.profile_table(step, profile_steps, rows), file=sys.stderr, flush=True)

    info = {
        "edges": int(batch["edge_index"].shape[1]),
        "weights": sum(p.numel() for p in model.parameters()),
    }
    harness.serve({"step": step, "profile": profiled}, info, channel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["both", "mace-torch"], default="both")
    parser.add_argument("--structures-file", help=argparse.SUPPRESS)
    parser.add_argument("--reference-python", default=DEFAULT_REFERENCE)
    parser.add_argument("--data", choices=["ethanol", "cu"], default="ethanol")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="torch.profiler both sides")
    parser.add_argument("--profile-steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=25, help="ops listed per profile")
    parser.add_argument(
        "--full-last-layer",
        action="store_true",
        help="geocompose's last layer writes 32x0e + 32x1o (mace-full-last-layer.yaml)",
    )
    args = parser.parse_args()
    threads = harness.set_threads(args.threads)
    if args.engine == "mace-torch":
        import ase.io

        frames = ase.io.read(args.structures_file, index=":")
        serve_reference(frames, args.profile_steps, args.rows)
        return

    import ase.io

    frames = copper_batch() if args.data == "cu" else ethanol_batch()
    print(harness.header("MACE training step: geocompose against mace-torch", [], threads))
    last = "32x0e + 32x1o (--full-last-layer)" if args.full_last_layer else "32x0e, as mace.yaml"
    print(f"geocompose's last layer: {last}")
    what = "EMT Cu cells, stress in the loss" if args.data == "cu" else "ethanol molecules"
    print(f"{STRUCTURES} {what} ({sum(map(len, frames))} atoms), float32; "
          f"{harness.timing_note(args.repeats, args.warmup)}")  # fmt: skip
    step, info = ours_step(frames, args.full_last_layer)
    harness.step_against_peer(step, info, frames, __file__, "mace-torch", args)


if __name__ == "__main__":
    main()
