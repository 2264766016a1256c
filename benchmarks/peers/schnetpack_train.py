"""schnetpack's PaiNN trained in a plain loop: the reference side of the ``painn`` pair.

Why not schnetpack's own trainer: schnetpack 2.1.1 pins torch 2.4, and its package
``__init__`` does not import on torch 2.13 (``schnetpack.data`` imports ``T_co``, a
private name torch removed; ``schnetpack.transform`` needs matscipy). Its trainer is
``AtomisticTask`` on pytorch-lightning, fed by ``schnetpack.data``, so it cannot run
here without patching schnetpack. What does run is schnetpack's model code, loaded past
the package ``__init__`` as ``benchmarks/painn.py`` does: the ``PaiNN`` representation
(128 features, 3 interactions, 20 Bessel functions, 5 Å cosine cutoff, the widths of
``blueprints/painn.yaml``), ``PairwiseDistances``, an ``Atomwise`` head 128 → 64 → 1
(SiLU, summed per structure) and ``Forces`` (-dE/dR by autograd), i.e. the modules
schnetpack's ``NeuralNetworkPotential`` chains.

This file drives them with the benchmark's hyperparameters in the loop geocompose's
trainer runs (so the pair compares the model code, not two training recipes): Adam
(weight decay 0) at a constant rate, batches of ``batch_structures`` shuffled every
epoch, loss ``w_E mean(((E - E*)/n)^2) + w_F mean((F - F*)^2)``, gradient-norm clipping,
an EMA of the weights with decay ``min(d, (1 + t) / (10 + t))``, the EMA weights kept
from the epoch of lowest validation loss. The energy is ``scale * Atomwise + sum E0``
with per-species E0 fitted to the training energies by least squares and ``scale`` the
RMS of the training forces, as geocompose's ``Potential`` does (schnetpack's own
recipe would subtract a mean per-atom energy and leave the scale at 1).

Neighbour lists (``ase.neighborlist``, cutoff 5 Å) are built once per structure before
training, as geocompose's trainer builds its graphs once; the throughput counts the
training steps alone. Needs ``PYTHONPATH=/work/venvs/spk-lib`` (``pip install --no-deps
--target /work/venvs/spk-lib schnetpack==2.1.1``).
"""

from __future__ import annotations

import importlib.metadata
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read
from ase.neighborlist import neighbor_list
from torch import nn

BENCHMARKS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCHMARKS))
from painn import CUTOFF, FEATURES, INTERACTIONS, NUM_RBF, schnetpack_modules
from train_cu import errors


class SchnetpackPotential(nn.Module):
    """schnetpack's PaiNN + Atomwise + Forces, with a fixed E0 shift and force scale."""

    def __init__(self, species: list[int], e0: np.ndarray, scale: float):
        super().__init__()
        PaiNN, BesselRBF, CosineCutoff = schnetpack_modules()
        from schnetpack.atomistic import Atomwise, Forces, PairwiseDistances

        self.distances = PairwiseDistances()
        self.representation = PaiNN(
            n_atom_basis=FEATURES,
            n_interactions=INTERACTIONS,
            radial_basis=BesselRBF(n_rbf=NUM_RBF, cutoff=CUTOFF),
            cutoff_fn=CosineCutoff(CUTOFF),
        )
        self.head = Atomwise(n_in=FEATURES, n_hidden=64, n_layers=2, output_key="y")
        self.forces = Forces(energy_key="energy", force_key="forces")
        table = torch.zeros(max(species) + 1)
        table[torch.tensor(species)] = torch.tensor(e0, dtype=table.dtype)
        self.register_buffer("e0", table)
        self.scale = float(scale)

    def forward(self, inputs: dict) -> dict:
        inputs = dict(inputs)
        inputs["_positions"] = inputs["_positions"].clone().requires_grad_(True)
        inputs = self.distances(inputs)
        inputs = self.representation(inputs)
        inputs = self.head(inputs)
        shift = torch.zeros_like(inputs["y"]).index_add_(
            0, inputs["_idx_m"], self.e0[inputs["_atomic_numbers"]]
        )
        inputs["energy"] = self.scale * inputs["y"] + shift
        return self.forces(inputs)


def structure(atoms, targets: bool = True) -> dict:
    """One structure's inputs (schnetpack's keys), its neighbour list built, and with
    ``targets`` its reference energy and forces."""
    i, j, shifts = neighbor_list("ijS", atoms, CUTOFF)
    item = {
        "_atomic_numbers": torch.tensor(atoms.numbers, dtype=torch.long),
        "_positions": torch.tensor(atoms.positions, dtype=torch.float32),
        "_idx_i": torch.tensor(i, dtype=torch.long),
        "_idx_j": torch.tensor(j, dtype=torch.long),
        "_offsets": torch.tensor(shifts @ atoms.cell.array, dtype=torch.float32),
    }
    if targets:
        item["energy"] = torch.tensor([atoms.get_potential_energy()], dtype=torch.float32)
        item["forces"] = torch.tensor(atoms.get_forces(), dtype=torch.float32)
    return item


def collate(items: list[dict]) -> dict:
    """Structures into one batch: atoms concatenated, pair indices offset."""
    counts = [len(item["_atomic_numbers"]) for item in items]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    keys = ("_atomic_numbers", "_positions", "_offsets", "energy", "forces")
    batch = {key: torch.cat([item[key] for item in items]) for key in keys if key in items[0]}
    for key in ("_idx_i", "_idx_j"):
        batch[key] = torch.cat([item[key] + int(s) for item, s in zip(items, starts)])
    batch["_n_atoms"] = torch.tensor(counts)
    batch["_idx_m"] = torch.repeat_interleave(torch.arange(len(items)), batch["_n_atoms"])
    return batch


def loss(model: nn.Module, batch: dict, hyper: dict) -> torch.Tensor:
    out = model(batch)
    per_atom = (out["energy"] - batch["energy"]) / batch["_n_atoms"]
    return (
        hyper["energy_weight"] * (per_atom**2).mean()
        + hyper["forces_weight"] * ((out["forces"] - batch["forces"]) ** 2).mean()
    )


def fitted_reference(frames) -> tuple[list[int], np.ndarray, float]:
    """Species, least-squares E0 per species (eV) and the RMS training force (eV/Å)."""
    species = sorted({int(z) for atoms in frames for z in atoms.numbers})
    counts = np.array([[np.sum(atoms.numbers == z) for z in species] for atoms in frames])
    energies = np.array([atoms.get_potential_energy() for atoms in frames])
    e0 = np.linalg.lstsq(counts, energies, rcond=None)[0]
    rms = float(np.sqrt(np.mean(np.concatenate([a.get_forces().ravel() for a in frames]) ** 2)))
    return species, e0, rms


class SchnetpackCalculator(Calculator):
    """The trained model as an ASE calculator (energy and forces), for ``errors``."""

    implemented_properties: ClassVar[list[str]] = ["energy", "forces"]

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        out = self.model(collate([structure(self.atoms, targets=False)]))
        self.results = {
            "energy": float(out["energy"].detach()[0]),
            "forces": out["forces"].detach().double().numpy(),
        }


def run(split: dict, epochs: int, seed: int, out: Path, hyper: dict) -> dict:
    """Train on ``split["train"]``, keep the best EMA weights on ``split["valid"]``,
    score on ``split["test"]``; the result row of ``train_head_to_head.py``."""
    torch.manual_seed(seed)
    train_frames = read(split["train"], index=":")
    species, e0, scale = fitted_reference(train_frames)
    model = SchnetpackPotential(species, e0, scale)
    size = hyper["batch_structures"]
    train = [structure(atoms) for atoms in train_frames]
    valid = [structure(atoms) for atoms in read(split["valid"], index=":")]
    valid = [collate(valid[k : k + size]) for k in range(0, len(valid), size)]
    optimizer = torch.optim.Adam(model.parameters(), lr=hyper["lr"], weight_decay=0.0)
    ema = {name: p.detach().clone() for name, p in model.named_parameters()}
    steps, train_time, seen = 0, 0.0, 0
    best, best_loss, best_epoch = None, float("inf"), 0
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(train))
        batches = [
            collate([train[k] for k in order[s : s + size]]) for s in range(0, len(order), size)
        ]
        model.train()
        start = time.perf_counter()
        for batch in batches:
            total = loss(model, batch, hyper)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), hyper["clip"])
            optimizer.step()
            decay = min(hyper["ema_decay"], (1 + steps) / (10 + steps))
            with torch.no_grad():
                for name, p in model.named_parameters():
                    ema[name].mul_(decay).add_(p.detach(), alpha=1 - decay)
            steps += 1
            seen += int(batch["_n_atoms"].numel())
        train_time += time.perf_counter() - start
        # Validate the averaged weights (the ones kept), training weights set aside.
        current = {name: p.detach().clone() for name, p in model.named_parameters()}
        averaged = _evaluated(model, ema, valid, hyper)
        if averaged < best_loss:
            best_loss, best_epoch = averaged, epoch + 1
            best = {name: t.clone() for name, t in ema.items()}
        _load(model, current)
    _load(model, best)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "best.pt")
    return {
        "engine": "schnetpack",
        "weights": sum(p.numel() for p in model.parameters()),
        "epochs": epochs,
        "best_epoch": best_epoch,
        "train_time_s": train_time,
        "structures_per_s": seen / train_time,
        **errors(SchnetpackCalculator(model), split["test"], score_stress=False),  # no stress loss
        "torch_threads": torch.get_num_threads(),
        "schnetpack": importlib.metadata.version("schnetpack"),
    }


def _load(model: nn.Module, weights: dict) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(weights[name])


def _evaluated(model: nn.Module, weights: dict, batches: list[dict], hyper: dict) -> float:
    """Mean validation loss of ``weights`` (eval mode: forces without a second graph)."""
    _load(model, weights)
    model.eval()
    total = sum(float(loss(model, b, hyper).detach()) * len(b["_n_atoms"]) for b in batches)
    return total / sum(len(b["_n_atoms"]) for b in batches)
