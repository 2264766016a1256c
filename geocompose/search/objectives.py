"""What a trained trial is scored on: validation error, size, latency, expressivity.

* validation error: forces MAE on the validation split (eV/Å), else the best
  validation loss when the data or model has no forces;
* parameter count of the potential;
* latency: median wall time (ms) of forward + forces on the data set's first
  structure, over ``latency_repeats`` calls after one warm-up call;
* expressivity (optional, when :mod:`geocompose.expressivity` is installed): mean
  accuracy (%) a perfect head could reach on a suite of hard pairs at random
  initialisation (Joshi et al. 2023's quick protocol), at the candidate's own depth.

With the TPE sampler the trainer is stepped one epoch per ``fit()`` (its
``config.epochs`` raised each time; the learning-rate schedule still spans the whole
budget) and the validation error is reported to Optuna's pruner after every epoch.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

from geocompose.search.config import SearchConfig
from geocompose.search.sampler import interaction_stack

__all__ = ["expressivity_score", "train_and_measure", "validation_error"]


def expressivity_score(candidate: dict, suite: str) -> float | None:
    """Mean quick-protocol accuracy (%) on ``suite``; None without the expressivity suite
    or when no classifier readout fits the candidate."""
    try:
        from geocompose.expressivity import run_suite
    except ImportError:
        return None
    from geocompose.errors import GeocomposeError

    stack = interaction_stack(candidate)
    depth = stack[0][1] if stack else 1
    try:
        rows = run_suite([candidate], suite, layers=[depth], quick=True)
    except GeocomposeError:
        return None
    return statistics.fmean(row.accuracy for row in rows) if rows else None


def validation_error(valid: dict[str, float], best_loss: float) -> tuple[str, float]:
    """(metric name, value): forces MAE when measured, else the best validation loss."""
    if "forces_mae" in valid and math.isfinite(valid["forces_mae"]):
        return "forces_mae", float(valid["forces_mae"])
    return "valid_loss", float(best_loss)


def train_and_measure(
    trial, candidate: dict, data, cfg: SearchConfig, out: Path
) -> tuple[float, int, float]:
    """Train ``candidate`` for the budget in ``OUT/runs/trial_NNNN``; returns
    (validation error, parameter count, latency in ms).

    Raises:
        optuna.TrialPruned: the pruner stopped it (TPE), or training diverged
            (recorded as ``rejected``).
    """
    import optuna
    import torch

    from geocompose.train import TrainConfig, Trainer, TrainingDiverged

    config = TrainConfig(
        epochs=cfg.budget_epochs,
        atoms_per_batch=cfg.atoms_per_batch,
        lr=cfg.lr,
        seed=cfg.seed,
        patience=0,
    )
    run = out / "runs" / f"trial_{trial.number:04d}"
    trainer = Trainer(candidate, data, config, out=run, progress=False, echo=lambda *a: None)
    start = time.perf_counter()
    try:
        for epoch in range(1, cfg.budget_epochs + 1):
            trainer.config.epochs = epoch  # one epoch per fit(); the schedule spans the budget
            result = trainer.fit()
            metric, error = validation_error(result.valid, result.best_loss)
            if cfg.sampler == "tpe":
                trial.report(error, epoch)
                if trial.should_prune():
                    trial.set_user_attr("pruned_at", epoch)
                    raise optuna.TrialPruned(f"{metric} {error:.4g} after epoch {epoch}")
    except TrainingDiverged as err:
        trial.set_user_attr("rejected", f"training diverged: {err}")
        raise optuna.TrialPruned(str(err)) from None
    trial.set_user_attr("train_s", time.perf_counter() - start)
    trial.set_user_attr("error_metric", metric)
    trial.set_user_attr("metrics", {k: float(v) for k, v in result.valid.items()})
    potential = trainer.potential.eval()
    params = sum(p.numel() for p in potential.parameters())
    reference = data.batches([0], atoms_per_batch=10**9, dtype=next(potential.parameters()).dtype)[
        0
    ]
    times = []
    for _ in range(cfg.latency_repeats + 1):  # the first call warms caches; not counted
        tic = time.perf_counter()
        with torch.no_grad() if not potential.has_forces else torch.enable_grad():
            potential(reference)
        times.append(1000 * (time.perf_counter() - tic))
    return error, params, statistics.median(times[1:])
