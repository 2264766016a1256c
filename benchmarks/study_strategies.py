"""The strategy study of docs/strategies.md: built-in equivariance against frames.

Trains, with :func:`geocompose.train.study.study` (the loop of ``geocompose train``,
one config and split for all), the built-in equivariant PaiNN and MACE and one
unconstrained network under each symmetry strategy, then prints the study table:

* ``--preset ethanol``: the raw-coordinate MLP of mlp-frame-averaging.yaml on the
  shipped xTB ethanol sample (150 molecules of 9 atoms);
* ``--preset cu``: FAENet on the shipped EMT Cu sample (200 cells of 32 atoms). Local
  frames and weighted frames are left out there: one network call per atom, or per kept
  atom pair, of a 32-atom cell is 32 to ~2,000 calls per structure.

    python benchmarks/study_strategies.py --preset ethanol --epochs 10 --out runs/study-ethanol

Timings need a quiet machine (the load average is printed with the table).
"""

from __future__ import annotations

import argparse
import copy
import os
from pathlib import Path

import torch

from geocompose.blueprint import read_blueprint
from geocompose.cli.study import fmt  # a figure that does not apply prints as a dash
from geocompose.data.dataset import Dataset
from geocompose.train.config import TrainConfig
from geocompose.train.study import study, write_csv

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "geocompose" / "data" / "examples"
PRESETS = {
    "ethanol": (
        "mlp-frame-averaging",
        EXAMPLES / "ethanol_xtb_small.extxyz",
        [
            "frame_averaging",
            {"type": "stochastic_frame_averaging", "eval_frames": 1},
            "canonicalisation",
            "local_frames",
            "augmentation",
            "sign_equivariant_frames",
            "weighted_frames",
            {"type": "learned_canonicalisation", "prior_weight": 0.01},
        ],
    ),
    "cu": (
        "faenet",
        EXAMPLES / "cu_emt_small.extxyz",
        [
            "frame_averaging",
            {"type": "stochastic_frame_averaging", "eval_frames": 1},
            "canonicalisation",
            "augmentation",
            "sign_equivariant_frames",
            {"type": "learned_canonicalisation", "prior_weight": 0.01},
        ],
    ),
}


def variant(base: str, strategy) -> dict:
    bp = read_blueprint(ROOT / "blueprints" / f"{base}.yaml").blueprint.model_dump(mode="json")
    bp = copy.deepcopy(bp)
    kind = strategy if isinstance(strategy, str) else strategy["type"]
    bp["name"] = f"{base.split('-')[0]}-{kind.replace('_', '-')}"
    bp["symmetry"] = {"group": "O(3)", "strategy": strategy}
    return bp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="ethanol")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/study")
    parser.add_argument("--structures", type=int, help="the first N structures of the data only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base, data_path, strategies = PRESETS[args.preset]
    blueprints = [
        str(ROOT / "blueprints" / "painn.yaml"),
        str(ROOT / "blueprints" / "mace.yaml"),
        *[variant(base, s) for s in strategies],
    ]
    config = TrainConfig(epochs=args.epochs, seed=args.seed, test_fraction=0.2, patience=0)
    data = Dataset.from_file(data_path)
    if args.structures is not None:
        data = data.subset(range(min(args.structures, len(data))))
    rows = study(blueprints, data, config, out=args.out)
    print(
        f"\n{args.preset}: {len(data)} structures, {args.epochs} epochs, seed {args.seed}, "
        "float32, 1 torch thread, "
        f"load average {os.getloadavg()}"
    )
    print(
        "| blueprint | strategy | energy MAE (meV/atom) | force MAE (meV/Å) | rotation error "
        "| reflection error | NVE drift | train s/epoch | inference ms/structure |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.blueprint} | {r.strategy} | {fmt(1e3 * r.energy_mae, '.1f')} "
            f"| {fmt(1e3 * r.forces_mae, '.0f')} | {fmt(r.rotation_error, '.1e')} "
            f"| {fmt(r.reflection_error, '.1e')} | {fmt(r.nve_drift, '.1e')} "
            f"| {r.train_s_per_epoch:.2f} | {r.inference_ms_per_structure:.2f} |"
        )
    print(f"csv: {write_csv(rows, Path(args.out) / 'study.csv')}")


if __name__ == "__main__":
    main()
