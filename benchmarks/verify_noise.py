"""Run-to-run spread of the verifier's figures: the default battery under several seeds.

The exact checks measure round-off (~1e-15), so their figures move with the sampled
structures and group elements. This runs the battery with seeds 0..N-1 on a shipped
blueprint (the seed also draws its weights), ASE's EMT and, where its environment
exists, the mace-torch peer (one model, seed 0 weights, in a worker), and prints the
min / median / max of every row that has a figure.

Usage::

    python benchmarks/verify_noise.py [--seeds 5] [--mace-python /work/venvs/mace/bin/python]
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MACE_FACTORY = "benchmarks.peers.mace_calculator:mace_calculator"


def spread(name: str, run, seeds: int) -> None:
    """Print min / median / max over ``seeds`` runs of ``run(seed)`` (a report)."""
    figures: dict[str, list[float]] = {}
    for seed in range(seeds):
        for row in run(seed).checks:
            if row.error is not None:
                figures.setdefault(row.name, []).append(row.error)
    print(f"{name}: {seeds} seeds (load {os.getloadavg()[0]:.1f})")
    for row, values in figures.items():
        low, mid, high = min(values), statistics.median(values), max(values)
        print(f"  {row:<32} {low:8.1e} {mid:8.1e} {high:8.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--blueprint", default=str(ROOT / "blueprints" / "schnet.yaml"))
    parser.add_argument("--mace-python", default="/work/venvs/mace/bin/python")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from ase.calculators.emt import EMT

    from geocompose.verification import calculator_subject, verify
    from geocompose.verification.remote import RemoteCalculator

    print("             min / median / max of each row's figure")
    spread(Path(args.blueprint).stem, lambda seed: verify(args.blueprint, seed=seed), args.seeds)
    emt = calculator_subject(EMT(), species=["Cu", "Al", "Ni"], name="EMT")
    spread("EMT", lambda seed: verify(emt, seed=seed), args.seeds)
    if not Path(args.mace_python).exists():
        print(f"mace: skipped, no interpreter at {args.mace_python}")
        return
    os.chdir(ROOT)  # the worker imports the factory from the repository root
    with RemoteCalculator(MACE_FACTORY, args.mace_python) as mace:
        subject = calculator_subject(
            mace, species=["H", "C", "O", "Cu"], reach=5.0, smooth=True, name="MACE"
        )
        spread("MACE (mace-torch)", lambda seed: verify(subject, seed=seed), args.seeds)


if __name__ == "__main__":
    main()
