"""Training on reference data: loss, reference energies, EMA, schedules, checkpoints,
the training loop, evaluation metrics and export.

Layered above ``verify`` and below ``cli`` (import-linter contract in pyproject.toml).
"""

from geocompose.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_potential,
    save_checkpoint,
)
from geocompose.train.loss import LossWeights
from geocompose.train.metrics import Metrics, evaluate, parity_plot
from geocompose.train.potential import Potential
from geocompose.train.config import TrainConfig, TrainingDiverged, TrainResult
from geocompose.train.trainer import Trainer

__all__ = [
    "CheckpointError",
    "LossWeights",
    "Metrics",
    "Potential",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "evaluate",
    "load_checkpoint",
    "load_potential",
    "parity_plot",
    "save_checkpoint",
]
