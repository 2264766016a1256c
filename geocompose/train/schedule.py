"""Learning-rate schedules with plain-value state (checkpointable with weights_only).

* ``cosine``: ``lr_e = lr (r + (1 - r) (1 + cos(pi min(e / T, 1))) / 2)`` over the
  ``T`` configured epochs, then flat at ``r lr`` (unlike ``CosineAnnealingLR`` it never
  rises again when training is resumed for more epochs).
* ``plateau``: multiply by ``factor`` when the validation loss has not improved for
  ``patience`` epochs, never below ``r lr``.
* ``constant``.
"""

from __future__ import annotations

import math

__all__ = ["SCHEDULES", "Schedule"]

SCHEDULES = ("cosine", "plateau", "constant")


class Schedule:
    """Per-epoch learning rate.

    Args:
        kind: one of :data:`SCHEDULES`.
        lr: the initial learning rate.
        epochs: the cosine's length ``T``.
        min_ratio: the floor ``r`` as a fraction of ``lr``.
        patience, factor: of the plateau schedule.
    """

    def __init__(
        self,
        kind: str,
        lr: float,
        epochs: int,
        min_ratio: float = 0.01,
        patience: int = 10,
        factor: float = 0.5,
    ):
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; choose from {', '.join(SCHEDULES)}")
        self.kind, self.base, self.epochs = kind, lr, max(epochs, 1)
        self.min_ratio, self.patience, self.factor = min_ratio, patience, factor
        self.scale = 1.0  # plateau's current multiplier
        self.best = math.inf
        self.bad = 0

    def lr(self, epoch: int) -> float:
        """Learning rate for 0-based ``epoch``."""
        if self.kind == "cosine":
            progress = min(epoch / self.epochs, 1.0)
            return self.base * (
                self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
            )
        if self.kind == "plateau":
            return self.base * max(self.scale, self.min_ratio)
        return self.base

    def observe(self, valid_loss: float) -> None:
        """Report an epoch's validation loss (only the plateau schedule uses it)."""
        if valid_loss < self.best * (1 - 1e-4):
            self.best, self.bad = valid_loss, 0
            return
        self.bad += 1
        if self.kind == "plateau" and self.bad > self.patience:
            self.scale *= self.factor
            self.bad = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.best, self.bad = (
            float(state["scale"]),
            float(state["best"]),
            int(state["bad"]),
        )
