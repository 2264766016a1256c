"""One NequIP training step, geocompose against nequip 0.19.1, on the same batch (issue 16).

The ``nequip`` pair of ``train_head_to_head.py`` times whole trainings; this script
isolates the step both repeat, interleaved call by call: forward, forces by autograd
with ``create_graph``, the loss ``1 x per-atom energy MSE + 10 x force MSE``, its
backward, gradient clipping at 10 and an optimiser step at lr 1e-2 (each side its
trainer's: geocompose's fused AdamW without weight decay, nequip's Adam), on
``mace_train_step.py``'s batch of 8 rattled ethanol molecules (72 atoms) with seeded
random targets. No EMA on either side (both trainings update one in their step; it is
a few microseconds of vector arithmetic here). Models: ``blueprints/nequip.yaml`` as the
pair trains it (species C, H, O, learned 16-wide embedding) through the trainer's
Potential and Objective, and nequip's ``FullNequIPGNNModel`` built from
``peers/nequip_train.py``'s ``model_config`` (the pair's mapping of the blueprint) with
a fixed shift 0 and scale 1 in place of its data statistics; float32.

nequip runs in its own venv as a :class:`harness.Worker` (this script under its python
with ``--engine nequip``); ``--profile`` adds torch.profiler's op count per step and
the costliest ops on both sides.

Run: ``python benchmarks/nequip_train_step.py --threads 1 --repeats 20 [--profile]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness

DEFAULT_REFERENCE = "/work/venvs/nequip/bin/python"
LR, CLIP, ENERGY_WEIGHT, FORCES_WEIGHT = 1e-2, 10.0, 1.0, 10.0  # the nequip pair's HYPER


def serve_reference(frames, profile_steps: int, rows: int) -> None:
    """nequip's training step, inside the nequip venv (a :class:`harness.Worker` child)."""
    channel, sys.stdout = sys.stdout, sys.stderr  # replies only on the real stdout
    # This folder holds nequip.py: drop it so that `import nequip` finds nequip.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    import importlib.util
    import warnings

    import numpy as np
    import torch
    from ase.data import atomic_numbers
    from nequip.data import AtomicDataDict, from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform
    from nequip.model import FullNequIPGNNModel
    from nequip.utils.global_state import set_global_state

    spec = importlib.util.spec_from_file_location("nequip_peer", HERE / "peers" / "nequip_train.py")
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    species = sorted({s for a in frames for s in a.get_chemical_symbols()}, key=atomic_numbers.get)
    config = peer.model_config(species, seed=0)
    config.pop("_target_")
    config.update(per_type_energy_shifts=0.0, per_type_energy_scales=1.0)
    set_global_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FullNequIPGNNModel(**config)
    model.train()
    mapper = ChemicalSpeciesToAtomTypeMapper(model_type_names=species)
    neighbours = NeighborListTransform(r_max=peer.WIDTHS["cutoff"])
    batch = AtomicDataDict.batched_from_list(
        [neighbours(mapper(from_ase(atoms))) for atoms in frames]
    )
    energy = torch.tensor([a.get_potential_energy() for a in frames], dtype=torch.float64)
    forces = torch.tensor(np.concatenate([a.get_forces() for a in frames]), dtype=torch.float64)
    atoms = torch.tensor([len(a) for a in frames], dtype=torch.float64)
    parameters = list(model.parameters())
    optimizer = torch.optim.Adam(parameters, lr=LR)  # nequip_train.py's optimiser

    def loss():
        out = model(dict(batch))
        predicted = out[AtomicDataDict.TOTAL_ENERGY_KEY].reshape(-1)
        total = ENERGY_WEIGHT * (((predicted - energy) / atoms) ** 2).mean()
        return total + FORCES_WEIGHT * ((out[AtomicDataDict.FORCE_KEY] - forces) ** 2).mean()

    step = harness.optimizer_step(loss, parameters, optimizer, CLIP)

    def profiled():
        print("## nequip training step, torch.profiler", file=sys.stderr)
        print(harness.profile_table(step, profile_steps, rows), file=sys.stderr, flush=True)

    info = {
        "edges": int(batch[AtomicDataDict.EDGE_INDEX_KEY].shape[1]),
        "weights": sum(p.numel() for p in parameters),
    }
    harness.serve({"step": step, "profile": profiled}, info, channel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["both", "nequip"], default="both")
    parser.add_argument("--structures-file", help=argparse.SUPPRESS)
    parser.add_argument("--reference-python", default=DEFAULT_REFERENCE)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="torch.profiler both sides")
    parser.add_argument("--profile-steps", type=int, default=5)
    parser.add_argument("--rows", type=int, default=25, help="ops listed per profile")
    args = parser.parse_args()
    threads = harness.set_threads(args.threads)
    import ase.io

    if args.engine == "nequip":
        serve_reference(ase.io.read(args.structures_file, index=":"), args.profile_steps, args.rows)
        return

    from mace_train_step import ethanol_batch, geocompose_step

    frames = ethanol_batch()
    print(harness.header("NequIP training step: geocompose against nequip", [], threads))
    print(f"8 ethanol molecules ({sum(map(len, frames))} atoms), float32; "
          f"{harness.timing_note(args.repeats, args.warmup)}")  # fmt: skip
    step, info = geocompose_step(frames, "nequip", lr=LR, fused=True)  # the trainer's AdamW
    harness.step_against_peer(step, info, frames, __file__, "nequip", args)


if __name__ == "__main__":
    main()
