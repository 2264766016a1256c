"""One PaiNN training step, geocompose against schnetpack, on the same batch (issue 16).

The ``painn`` pair of ``train_head_to_head.py`` times whole trainings of a few seconds,
whose throughput moves with the host; this script isolates the step both repeat, in one
process, interleaved: forward, forces by ``autograd.grad(create_graph=True)``, the loss
``1 x per-atom energy MSE + 10 x force MSE``, its backward, gradient clipping at 10 and
an optimizer step (lr 1e-3), on ``mace_train_step.py``'s batch of 8 rattled ethanol
molecules (72 atoms) with seeded random targets. Models: ``blueprints/painn.yaml`` as
the pair trains it (species C, H, O) through the trainer's Potential and Objective, and
schnetpack's PaiNN + Atomwise + Forces as ``peers/schnetpack_train.py`` builds and steps
them (its E0 shift and force scale fitted on the batch). float32. Weights are not copied
(``painn.py`` checks that the two are the same function given the same weights).

Run: ``PYTHONPATH=/work/venvs/spk-lib python benchmarks/painn_train_step.py --threads 1``
(schnetpack installed as ``painn.py`` says); ``--profile`` adds torch.profiler's op count
per step for both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "peers"))
import harness

LR, CLIP, ENERGY_WEIGHT, FORCES_WEIGHT = 1e-3, 10.0, 1.0, 10.0  # the painn pair's HYPER


def ours_step(frames):
    """geocompose's training step (``mace_train_step.geocompose_step`` for PaiNN, with the
    trainer's fused AdamW) and the number of edges."""
    from mace_train_step import geocompose_step

    step, info = geocompose_step(frames, "painn", lr=LR, fused=True)
    return step, info["edges"]


def schnetpack_step(frames):
    """schnetpack's modules stepped as ``peers/schnetpack_train.py`` steps them."""
    import schnetpack_train as peer
    import torch

    species, e0, scale = peer.fitted_reference(frames)
    model = peer.SchnetpackPotential(species, e0, scale)
    batch = peer.collate([peer.structure(atoms) for atoms in frames])
    parameters = list(model.parameters())
    optimizer = torch.optim.Adam(parameters, lr=LR, weight_decay=0.0)
    hyper = {"energy_weight": ENERGY_WEIGHT, "forces_weight": FORCES_WEIGHT}
    step = harness.optimizer_step(lambda: peer.loss(model, batch, hyper), parameters,
                                  optimizer, CLIP)  # fmt: skip
    return step, int(batch["_idx_i"].numel())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="op counts per step, both sides")
    args = parser.parse_args(argv)
    threads = harness.set_threads(args.threads)
    from mace_train_step import ethanol_batch

    frames = ethanol_batch()
    print(harness.header("PaiNN training step: geocompose against schnetpack", ["schnetpack"],
                         threads))  # fmt: skip
    print(f"8 ethanol molecules ({sum(map(len, frames))} atoms), float32; "
          f"{harness.timing_note(args.repeats, args.warmup)}")  # fmt: skip
    ours, ours_edges = ours_step(frames)
    theirs, their_edges = schnetpack_step(frames)
    if ours_edges != their_edges:
        raise SystemExit(f"edge counts differ: ours {ours_edges}, schnetpack {their_edges}")
    timing = harness.interleaved({"ours": ours, "schnetpack": theirs}, args.repeats, args.warmup)
    print(f"edges {ours_edges}")
    print(f"  geocompose  {timing['ours']} ms")
    print(f"  schnetpack  {timing['schnetpack']} ms")
    step_ratio = harness.ratio(timing["ours"], timing["schnetpack"])
    print(f"  time ratio ours / schnetpack {step_ratio:.3f} (throughput x{1 / step_ratio:.2f})")
    if args.profile:
        for name, step in (("geocompose", ours), ("schnetpack", theirs)):
            print(f"\n{name}: {harness.profile_table(step, 5, 15)}")
    print(harness.footer())


if __name__ == "__main__":
    main()
