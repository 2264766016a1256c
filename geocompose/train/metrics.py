"""Error metrics over many batches (MAE and RMSE per structure, per atom and per force
component) and a parity plot.

Energy errors are reported both per structure (eV) and per atom (eV/atom: the error of
each structure divided by its atom count); force errors per Cartesian component (eV/Å);
stress per tensor component (eV/Å^3).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from geocompose.data.batch import Batch
from geocompose.train.loss import LossWeights, loss
from geocompose.train.potential import Potential
from geocompose.types import fields as F

__all__ = ["Metrics", "evaluate", "parity_plot"]


class Metrics:
    """Accumulates errors batch by batch; :meth:`compute` gives the summary.

    Args:
        keep: also keep every prediction and target (for :func:`parity_plot`).
    """

    def __init__(self, keep: bool = False):
        self.keep = keep
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def _add(self, name: str, error: torch.Tensor) -> None:
        error = error.detach().double().reshape(-1)
        self.sums[name + "_abs"] = self.sums.get(name + "_abs", 0.0) + float(error.abs().sum())
        self.sums[name + "_sq"] = self.sums.get(name + "_sq", 0.0) + float((error**2).sum())
        self.counts[name] = self.counts.get(name, 0) + error.numel()

    def _pair(self, name: str, pred: torch.Tensor, target: torch.Tensor) -> None:
        if self.keep:
            self.pairs.setdefault(name, []).append(
                (
                    pred.detach().double().reshape(-1).cpu().numpy(),
                    target.detach().double().reshape(-1).cpu().numpy(),
                )
            )

    def update(self, pred: dict[str, torch.Tensor], batch: Batch) -> None:
        """Add one batch's predictions (a Potential's output) against its targets."""
        target = batch.targets
        if F.ENERGY in pred and F.ENERGY in target:
            atoms = batch.counts().to(pred[F.ENERGY].dtype)
            self._add("energy", pred[F.ENERGY] - target[F.ENERGY])
            self._add("energy_per_atom", (pred[F.ENERGY] - target[F.ENERGY]) / atoms)
            self._pair("energy_per_atom", pred[F.ENERGY] / atoms, target[F.ENERGY] / atoms)
        for name in (F.FORCES, F.STRESS):
            if name in pred and name in target:
                self._add(name, pred[name] - target[name])
                self._pair(name, pred[name], target[name])

    def compute(self) -> dict[str, float]:
        """``<quantity>_mae`` and ``<quantity>_rmse`` for each quantity seen."""
        out = {}
        for name, count in self.counts.items():
            out[f"{name}_mae"] = self.sums[name + "_abs"] / count
            out[f"{name}_rmse"] = float(np.sqrt(self.sums[name + "_sq"] / count))
        return out

    def arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(predictions, targets) kept for ``name`` (needs ``keep=True``)."""
        pairs = self.pairs.get(name, [])
        if not pairs:
            return np.zeros(0), np.zeros(0)
        return np.concatenate([p for p, _ in pairs]), np.concatenate([t for _, t in pairs])


def evaluate(
    potential: Potential,
    batches,
    weights: LossWeights | None = None,
    keep: bool = False,
    stress: bool | None = None,
) -> tuple[Metrics, float]:
    """Metrics (and the mean weighted loss when ``weights``) of ``potential`` in eval mode.

    Args:
        stress: also predict stress (one more backward pass); None: wherever the batch
            has stress targets and is periodic, or the loss weighs stress.
    """
    was_training = potential.training
    potential.eval()
    metrics, total, count = Metrics(keep=keep), 0.0, 0
    weighted = weights is not None and weights.stress > 0
    try:
        for batch in batches:
            wanted = weighted or (_wants_stress(batch) if stress is None else stress)
            with torch.no_grad():
                pred = potential(batch, stress=wanted)
            metrics.update(pred, batch)
            if weights is not None:
                value, _ = loss(pred, batch, weights)
                total += float(value) * batch.num_structures
                count += batch.num_structures
    finally:
        potential.train(was_training)
    return metrics, (total / count if count else math.nan)


def _wants_stress(batch) -> bool:
    return F.STRESS in batch.targets and bool(batch.pbc.all())


UNITS = {"energy_per_atom": "eV/atom", F.FORCES: "eV/Å", F.STRESS: "eV/Å³"}


def parity_plot(metrics: Metrics, path: str | Path, title: str = "") -> Path:
    """Predicted against reference values, one panel per quantity kept, as a PNG.

    Needs matplotlib (the ``draw`` extra); the Agg backend, so no display is used.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ("energy_per_atom", F.FORCES, F.STRESS) if metrics.pairs.get(n)]
    summary = metrics.compute()
    fig, axes = plt.subplots(
        1, max(len(names), 1), figsize=(4.2 * max(len(names), 1), 4.2), squeeze=False
    )
    for ax, name in zip(axes[0], names):
        pred, ref = metrics.arrays(name)
        low, high = float(min(pred.min(), ref.min())), float(max(pred.max(), ref.max()))
        ax.plot([low, high], [low, high], color="0.6", lw=1)
        ax.scatter(ref, pred, s=3, alpha=0.4, lw=0)
        ax.set_xlabel(f"reference {name} ({UNITS[name]})")
        ax.set_ylabel(f"predicted ({UNITS[name]})")
        ax.set_title(
            f"MAE {summary[name + '_mae']:.4g}, RMSE {summary[name + '_rmse']:.4g}", fontsize=9
        )
        ax.set_aspect("equal", adjustable="datalim")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
