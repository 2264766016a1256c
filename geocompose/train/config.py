"""What decides a training run (stored in every checkpoint) and what a finished run reports."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from geocompose.errors import GeocomposeError
from geocompose.train.loss import LossWeights

__all__ = ["STRESS_WEIGHT", "TrainConfig", "TrainResult", "TrainingDiverged"]

STRESS_WEIGHT = 1.0  # (eV/Å^3)^-2, mace-torch's default --stress_weight


class TrainingDiverged(GeocomposeError):
    """The loss became NaN or infinite (usually: learning rate too high)."""


@dataclass
class TrainConfig:
    """Everything that decides a training run (stored in every checkpoint)."""

    epochs: int = 100
    atoms_per_batch: int = 256
    edges_per_batch: int = 0  # 0: batches limited by atoms only
    lr: float | None = None  # None: by the model's weights (train/learning_rate.py)
    weight_decay: float = 0.0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.01
    energy_weight: float = 1.0
    forces_weight: float = 10.0
    stress_weight: float | None = None  # None: STRESS_WEIGHT when all data is 3D-periodic with stress, else 0
    ema_decay: float = 0.99  # 0 turns the average off
    clip: float = 10.0  # max gradient norm; 0 turns clipping off
    patience: int = 50  # epochs without improvement before stopping; 0 never stops
    valid_fraction: float = 0.1
    test_fraction: float = 0.0
    seed: int = 0
    dtype: str = "float32"
    autocast: str = "off"  # "bf16": forward and loss under torch.autocast (mixed precision)
    device: str = "cpu"
    init: str = ""  # a checkpoint to start from (train/finetune.py)
    freeze: list[str] = field(default_factory=list)  # blueprint paths of blocks not trained

    @property
    def weights(self) -> LossWeights:
        return LossWeights(self.energy_weight, self.forces_weight, self.stress_weight)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class TrainResult:
    """What a finished run reports."""

    epochs: int
    best_epoch: int
    best_loss: float
    valid: dict[str, float]
    stopped_early: bool
    best: Path
    last: Path
    history: list[dict[str, float]] = field(default_factory=list)
