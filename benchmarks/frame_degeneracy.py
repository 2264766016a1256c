"""Frame strategies where frames are degenerate: symmetry errors and continuity.

For every frame strategy, on the same unconstrained network (the raw-coordinate MLP of
blueprints/mlp-frame-averaging.yaml), in float64 with weights from seed 0:

* the relative rotation error of energies and of forces on each structure whose PCA
  covariance has repeated eigenvalues (tetrahedron, cube, planar ring). Cubic crystals
  are left out: the only periodic unconstrained block (FAENet) is, at initialisation,
  orientation-blind on cubic cells even with no strategy at all (energies of a rotated
  fcc, bcc or simple cubic cell agree to 2e-15), so it cannot show what a frame does;
* the jump of energies and forces across the degenerate point of each path of the
  verifier's continuity check (rectangle → square, triangle → equilateral, stretched
  → regular tetrahedron), relative to their size, and as a multiple of the path's
  largest slope;
* the cost of one evaluation relative to frame averaging (network calls per structure
  differ: 8 for frame averaging, 1 for a canonicalisation, one per kept pair or per
  atom for weighted and local frames) on a batch of generic molecules. Timing needs a
  quiet machine; the load average is printed.

    python benchmarks/frame_degeneracy.py            # markdown tables on stdout
"""

from __future__ import annotations

import copy
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

import geocompose
from geocompose.blueprint import read_blueprint
from geocompose.data import structures as S
from geocompose.data.batch import Batch
from geocompose.types import Level
from geocompose.verification import checks
from geocompose.verification.frame_paths import MOLECULE_PATHS, walk
from geocompose.verification.subject import compiled_subject

ROOT = Path(__file__).parents[1]
STRATEGIES = [
    "frame_averaging",
    {"type": "stochastic_frame_averaging", "eval_frames": 1},
    "canonicalisation",
    "local_frames",
    "sign_equivariant_frames",
    "weighted_frames",
    "learned_canonicalisation",
]
REPEATS = 5


def label(strategy) -> str:
    if isinstance(strategy, str):
        return strategy
    return "sfa (eval_frames 1)" if strategy["type"].startswith("stochastic") else strategy["type"]


def subject_for(blueprint: str, strategy):
    bp = read_blueprint(ROOT / "blueprints" / f"{blueprint}.yaml").blueprint.model_dump(mode="json")
    bp = copy.deepcopy(bp)
    bp["symmetry"] = {"group": "O(3)", "strategy": strategy}
    model = geocompose.compile(bp, dtype=torch.float64, seed=0)
    return compiled_subject(model, own=True)


def rotation_errors(subject, atoms) -> tuple[float, float]:
    """(energy, forces) relative rotation errors on one structure."""
    batch = Batch.from_ase([atoms], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    energy = checks.rotation_check(subject, batch, ["s"], gen, False, Level.STRUCTURE).worst
    gen = torch.Generator().manual_seed(0)
    forces = checks.rotation_check(subject, batch, ["s"], gen, False, Level.NODE).worst
    return energy, forces


def seconds_per_call(subject, batch) -> float:
    subject(batch)  # warm-up
    start = time.perf_counter()
    for _ in range(REPEATS):
        subject(batch)
    return (time.perf_counter() - start) / REPEATS


def main() -> None:
    torch.set_num_threads(1)
    print(f"machine: {platform.platform()}, 1 torch thread, load average {os.getloadavg()}")
    print(f"torch {torch.__version__}; float64; weights from seed 0\n")
    degenerate = S.degenerate_frame_structures(["H", "C"])
    rng = np.random.default_rng(0)
    generic = Batch.from_ase([S.random_molecule(rng, ["H", "C", "N", "O"], 6.0) for _ in range(4)])
    names = [name for name, _ in degenerate]
    print("Rotation error on degenerate structures, energy / forces (relative):\n")
    print("| strategy | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    cost, paths = {}, {}
    for strategy in STRATEGIES:
        mlp = subject_for("mlp-frame-averaging", strategy)
        cells = [rotation_errors(mlp, atoms) for _, atoms in degenerate]
        row = " | ".join(f"{e:.1e} / {f:.1e}" for e, f in cells)
        print(f"| {label(strategy)} | {row} |", flush=True)
        paths[label(strategy)] = {
            name: walk(mlp, path, "C") for name, path in MOLECULE_PATHS.items()
        }
        cost[label(strategy)] = seconds_per_call(mlp, generic)
    print("\nJump across the degenerate point of each path, energy / forces (relative; x the")
    print("path's largest slope in brackets):\n")
    print("| strategy | " + " | ".join(MOLECULE_PATHS) + " |")
    print("|---" * (len(MOLECULE_PATHS) + 1) + "|")
    for name, by_path in paths.items():
        cells = []
        for measured in by_path.values():
            parts = []
            for output in ("energy", "forces"):
                m = measured[output]
                ratio = m.where.split("= ")[-1].replace(" x the slope", "x")
                parts.append(f"{m.worst:.1e} ({ratio})")
            cells.append(" / ".join(parts))
        print(f"| {name} | " + " | ".join(cells) + " |")
    reference = cost["frame_averaging"]
    print("\nCost of one evaluation (4 generic molecules, energy + forces), relative to")
    print(f"frame averaging ({reference * 1e3:.0f} ms); load average {os.getloadavg()}:\n")
    print("| strategy | time / frame averaging |")
    print("|---|---|")
    for name, seconds in cost.items():
        print(f"| {name} | {seconds / reference:.2f} |")


if __name__ == "__main__":
    main()
