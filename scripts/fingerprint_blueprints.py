"""Fingerprint every shipped blueprint: fixed-seed float64 outputs, saved or compared.

A refactor that must not change numerics (e.g. how memos are cached) is checked by
saving before and comparing after, bit for bit::

    python scripts/fingerprint_blueprints.py save /tmp/before.pt
    python scripts/fingerprint_blueprints.py compare /tmp/before.pt

Each blueprint is compiled with ``dtype=float64, seed=0`` and run on a molecule, a
triclinic periodic cell, a rattled fcc crystal (the dense triplet layout) and the three
batched together, twice on the same batch (the second call reuses the batch's cached
topology), in evaluation and in training mode. Saved per run: every output, and
``-dE/dx`` by autograd where the model has an energy but no forces readout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import ase.build
import numpy as np
import torch

import geocompose
from geocompose.data import structures as S
from geocompose.errors import GeocomposeError

BLUEPRINTS = Path(__file__).resolve().parents[1] / "blueprints"


def structures(species: list[str]) -> dict[str, list]:
    rng = np.random.default_rng(0)
    molecule = S.random_molecule(rng, species, 4.0)
    cell = S.random_cell(rng, species)
    crystal = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True)
    crystal.rattle(0.05, seed=2)
    crystal.set_chemical_symbols([species[i % len(species)] for i in range(len(crystal))])
    return {
        "molecule": [molecule],
        "cell": [cell],
        "crystal": [crystal],
        "batched": [molecule, cell, crystal],
    }


def outputs_of(model, batch: geocompose.Batch) -> dict[str, torch.Tensor]:
    """The model's outputs, plus the position gradient of its energy if no forces."""
    gradient = "energy" in model.outputs and "forces" not in model.outputs
    if gradient:
        batch = batch.replace(positions=batch.positions.detach().requires_grad_(True))
    out = model(batch)
    result = {name: value.detach().clone() for name, value in out.items()}
    if gradient:
        (grad,) = torch.autograd.grad(out["energy"].sum(), batch.positions)
        result["energy_gradient"] = grad.detach().clone()
    return result


def fingerprint(path: Path) -> dict[str, torch.Tensor | str]:
    model = geocompose.compile(path, dtype=torch.float64, seed=0)
    found: dict[str, torch.Tensor | str] = {}
    for mode in ("eval", "train"):
        model.train(mode == "train")
        for name, atoms in structures(list(model.species)).items():
            batch = geocompose.Batch.from_ase(atoms)
            for call in (1, 2):  # the second call reuses the batch's cached topology
                key = f"{path.stem}/{mode}/{name}/call{call}"
                try:
                    for output, value in outputs_of(model, batch).items():
                        found[f"{key}/{output}"] = value
                except GeocomposeError as error:  # e.g. a molecules-only graph on a cell
                    found[f"{key}/refused"] = str(error)
    return found


def same(a: torch.Tensor | str, b: torch.Tensor | str) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "compare"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--only", nargs="*", help="blueprint stems (default: all)")
    args = parser.parse_args(argv)
    paths = sorted(BLUEPRINTS.glob("*.yaml"))
    if args.only:
        paths = [p for p in paths if p.stem in args.only]
    found: dict[str, torch.Tensor | str] = {}
    for path in paths:
        found.update(fingerprint(path))
        print(f"{path.stem}: fingerprinted", flush=True)
    if args.action == "save":
        torch.save(found, args.file)
        print(f"saved {len(found)} tensors to {args.file}")
        return 0
    saved = torch.load(args.file)
    if args.only:
        saved = {k: v for k, v in saved.items() if k.split("/")[0] in args.only}
    differ = sorted(k for k in saved.keys() & found.keys() if not same(saved[k], found[k]))
    missing = sorted(saved.keys() ^ found.keys())
    for key in differ:
        if isinstance(saved[key], str) or isinstance(found[key], str):
            print(f"DIFFERS {key}: {saved[key]!r} != {found[key]!r}")
            continue
        delta = (saved[key] - found[key]).abs().max().item()
        print(f"DIFFERS {key}: max |delta| = {delta:.3e}")
    for key in missing:
        print(f"ONLY IN ONE {key}")
    print(f"{len(saved) - len(differ)} of {len(saved)} tensors bit-identical")
    return 1 if differ or missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
