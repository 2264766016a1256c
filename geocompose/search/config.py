"""How a search judges its trials: the settings every worker shares, and the objectives.

The engine (which runs trials) and the objectives (which score one) both read this
module and neither reads the other's.
"""

from __future__ import annotations

from dataclasses import dataclass

from geocompose.errors import GeocomposeError

__all__ = ["OBJECTIVES", "SearchConfig", "SearchError", "objective_names"]

OBJECTIVES = ("valid_error", "params", "latency_ms")
"""The objectives of a multi-objective study, in order, all minimised (plus
``expressivity``, maximised, with ``SearchConfig.expressivity_objective``)."""


class SearchError(GeocomposeError):
    """A search that cannot start (mismatched study, bad settings, a busy directory)."""


@dataclass
class SearchConfig:
    """How each trial is judged (the same for every worker)."""

    budget_epochs: int = 5
    sampler: str = "nsga2"  # or "tpe" (single objective, median pruning)
    seed: int = 0
    atoms_per_batch: int = 256
    lr: float | None = None  # None: each design's default, by its weights (train/learning_rate.py)
    verify_samples: int = 1
    latency_repeats: int = 5
    expressivity: str | None = "counterexamples"  # suite scored per trial; None: skip
    expressivity_objective: bool = False  # rank by it too (a 4th objective, maximised)
    heartbeat_s: int = 60
    """RDB storages only: a worker records a heartbeat this often; a running trial
    without one for twice as long is failed (its worker died) and its design re-tried."""


def objective_names(cfg: SearchConfig) -> tuple[str, ...]:
    """The study's objectives for a config, in order (expressivity is maximised)."""
    if cfg.sampler == "tpe":
        return ("valid_error",)
    extra = ("expressivity",) if cfg.expressivity and cfg.expressivity_objective else ()
    return (*OBJECTIVES, *extra)
