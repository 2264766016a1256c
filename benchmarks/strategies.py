"""Measured equivariance errors of each symmetry strategy, on the same networks.

Runs the verifier on the unconstrained blueprints (raw-coordinate MLP, FAENet) under
every registered strategy and prints max / mean relative errors for rotations and
reflections on generic structures, and on structures with degenerate PCA frames.

    python benchmarks/strategies.py [--samples 3]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

from geocompose.blueprint import read_blueprint
from geocompose.verification import verify

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

ROOT = Path(__file__).parents[1]
STRATEGIES = [
    "none",
    "frame_averaging",
    "canonicalisation",
    "local_frames",
    {"type": "stochastic_frame_averaging", "eval_frames": 1},
    {"type": "stochastic_frame_averaging", "eval_frames": 2},
    "augmentation",
]


def fmt(check) -> str:
    if check is None or check.error is None:
        return "—"
    mean = f" (mean {check.mean:.1e})" if check.mean is not None else ""
    return f"{check.error:.1e}{mean} {check.verdict.value}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--blueprints", nargs="+", default=["mlp-frame-averaging", "faenet"])
    args = parser.parse_args()
    print(harness.header("Equivariance errors of each symmetry strategy"))
    print(f"float64; {args.samples} samples each")
    header = "| blueprint | strategy | rotation | reflection | rotation, degenerate (energy) | rotation, degenerate (forces) |"
    print(header)
    print("|---|---|---|---|---|---|")
    for name in args.blueprints:
        base = read_blueprint(ROOT / "blueprints" / f"{name}.yaml").blueprint.model_dump(
            mode="json"
        )
        for strategy in STRATEGIES:
            bp = copy.deepcopy(base)
            bp["symmetry"] = {"group": "O(3)", "strategy": strategy}
            report = verify(bp, samples=args.samples, seed=0)
            checks = {c.name: c for c in report.checks}
            label = (
                strategy
                if isinstance(strategy, str)
                else f"{strategy['type']} (eval {strategy['eval_frames']})"
            )
            print(
                f"| {name} | {label} | {fmt(checks.get('rotation'))} | {fmt(checks.get('reflection'))} | "
                f"{fmt(checks.get('rotation, degenerate frames (structure)'))} | "
                f"{fmt(checks.get('rotation, degenerate frames (node)'))} |"
            )


if __name__ == "__main__":
    main()
