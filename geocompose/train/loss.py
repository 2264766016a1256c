"""The training loss: weighted mean-squared errors of energy, forces and stress.

    L = w_E mean_b ((E_b - E*_b) / n_b)^2 + w_F mean_{i,a} (F_ia - F*_ia)^2
        + w_S mean_{b,a,c} (sigma_bac - sigma*_bac)^2

A module of the model that is :class:`~geocompose.nn.symmetry.base.Penalised` (a
learned canonicaliser with a prior) adds ``weight * term`` of its latest forward.

Energies are compared *per atom* so a structure's weight does not grow with its size,
and the force term is per component, as in NequIP and MACE. Units: eV/atom, eV/Å and
eV/Å^3, so the weights say how many (eV/atom)^2 one (eV/Å)^2 is worth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from geocompose.data.batch import Batch
from geocompose.nn.symmetry.base import Penalised
from geocompose.types import fields as F

__all__ = ["LossWeights", "Objective", "loss"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of each term; a zero weight leaves the term out (and its target unneeded)."""

    energy: float = 1.0
    forces: float = 10.0
    stress: float = 0.0

    def targets(self) -> list[str]:
        """Targets the loss reads."""
        return [name for name in (F.ENERGY, F.FORCES, F.STRESS) if getattr(self, name) > 0]


def loss(
    pred: dict[str, torch.Tensor], batch: Batch, weights: LossWeights
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted loss of one batch and its unweighted terms (as floats, for logging)."""
    target = batch.targets
    total = pred[F.ENERGY].new_zeros(())
    parts: dict[str, float] = {}
    if weights.energy > 0:
        atoms = batch.counts().to(pred[F.ENERGY].dtype)
        term = (((pred[F.ENERGY] - target[F.ENERGY]) / atoms) ** 2).mean()
        total = total + weights.energy * term
        parts[F.ENERGY] = float(term.detach())
    if weights.forces > 0:
        term = ((pred[F.FORCES] - target[F.FORCES]) ** 2).mean()
        total = total + weights.forces * term
        parts[F.FORCES] = float(term.detach())
    if weights.stress > 0:
        term = ((pred[F.STRESS] - target[F.STRESS]) ** 2).mean()
        total = total + weights.stress * term
        parts[F.STRESS] = float(term.detach())
    return total, parts


class Objective(nn.Module):
    """A potential and its weighted loss as one module, ``batch -> (loss, terms)``.

    What the trainer steps through, and what DDP wraps: with the loss as the only
    output, a weight the loss never reaches (a direct-forces head under a zero force
    weight) is one DDP can find unused.
    """

    def __init__(self, potential: nn.Module, weights: LossWeights, stress: bool = False):
        super().__init__()
        self.potential = potential
        self.weights = weights
        self.stress = stress

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        total, parts = loss(self.potential(batch, stress=self.stress), batch, self.weights)
        for part in self.potential.modules():
            if isinstance(part, Penalised) and part.penalty_weight > 0:
                term = part.take_penalty()
                if term is not None:
                    total = total + part.penalty_weight * term
                    parts[part.penalty_name] = float(term.detach())
        return total, parts
