"""Equivariance error of the relaxed SO(2) product against its coefficient.

``tensor_product.relaxation`` (SCN-style relaxed equivariance) adds per-edge weights on
the 2x2 maps of each ``|m| >= 1`` block that do not commute with rotations about the
edge. At 0 they do not exist and the verifier proves O(3); above 0 it measures the
error. This compiles ``blueprints/escn-relaxed.yaml`` at each coefficient (seed 0: above
0 the same weights, only their scale changes) and prints the verifier's
rotation and reflection errors (relative, float64, energies and forces, the largest
and the mean over the sampled structures).

    python benchmarks/so2_relaxation.py [--samples 2]

Not a timing: the figures do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from geocompose.blueprint import read_blueprint
from geocompose.verification import verify
from geocompose.verification.battery import CHECKS

BLUEPRINT = Path(__file__).parents[1] / "blueprints" / "escn-relaxed.yaml"
COEFFICIENTS = (0.0, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.3, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    raw = read_blueprint(BLUEPRINT).blueprint.model_dump(mode="json")
    battery = tuple(c for c in CHECKS if c.name in ("rotation", "reflection"))
    print(f"# {raw['name']}: equivariance error vs tensor_product.relaxation")
    print(
        f"verifier: {args.samples} molecules + {args.samples} cells + fixed cases, seed 0, float64"
    )
    print(
        "| relaxation | rotation max | rotation mean | reflection max | reflection mean | verdict |"
    )
    print("|---:|---:|---:|---:|---:|---|")
    for eps in COEFFICIENTS:
        raw["interactions"][0]["tensor_product"]["relaxation"] = eps
        report = verify(raw, samples=args.samples, seed=0, checks=battery)
        rot, ref = report.check("rotation"), report.check("reflection")
        print(
            f"| {eps:g} | {rot.error:.1e} | {rot.mean:.1e} | {ref.error:.1e} | {ref.mean:.1e} "
            f"| {rot.verdict.value} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
