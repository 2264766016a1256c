"""The designs of a search space as Optuna sees them: suggesting a candidate through an
Optuna trial, enumerating every design of a finite space (an odometer over the sampling
path), and enqueueing the designs no trial has tried yet.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from geocompose.search.space import Space

__all__ = ["OptunaSuggester", "assignments", "enqueue_untried", "trial_params"]


class OptunaSuggester:
    """The :class:`~geocompose.search.space.Suggester` protocol on an Optuna trial.

    Categorical knobs are suggested as option indices (the options themselves may be
    mappings); the sampled blueprint is stored in the trial's ``blueprint`` attribute.
    """

    def __init__(self, trial):
        self.trial = trial

    def categorical(self, name: str, count: int) -> int:
        return self.trial.suggest_categorical(name, list(range(count)))

    def integer(self, name: str, low: int, high: int, log: bool) -> int:
        return self.trial.suggest_int(name, low, high, log=log)

    def real(self, name: str, low: float, high: float, log: bool) -> float:
        return self.trial.suggest_float(name, low, high, log=log)


class _Replay:
    """Suggests the k-th value of each knob from a prefix (0 beyond it), recording calls."""

    def __init__(self, prefix: list[int]):
        self.prefix, self.calls = prefix, []

    def _next(self, name: str, count: int, value):
        k = self.prefix[len(self.calls)] if len(self.calls) < len(self.prefix) else 0
        self.calls.append((name, k, count, value(k)))
        return value(k)

    def categorical(self, name: str, count: int) -> int:
        return self._next(name, count, lambda k: k)

    def integer(self, name: str, low: int, high: int, log: bool) -> int:
        return self._next(name, high - low + 1, lambda k: low + k)

    def real(self, name: str, low: float, high: float, log: bool) -> float:
        raise ValueError("a space with float ranges cannot be enumerated")


def assignments(space: Space) -> Iterator[dict[str, int]]:
    """Every parameter assignment of a finite space (only the knobs each one reaches),
    as Optuna would suggest them: an odometer over the sampling path."""
    prefix: list[int] = []
    while True:
        replay = _Replay(prefix)
        space.sample(replay)
        yield {name: value for name, _, _, value in replay.calls}
        i = len(replay.calls) - 1
        while i >= 0 and replay.calls[i][1] == replay.calls[i][2] - 1:
            i -= 1
        if i < 0:
            return
        prefix = [c[1] for c in replay.calls[:i]] + [replay.calls[i][1] + 1]


def trial_params(trial) -> dict:
    # An enqueued trial holds its values as fixed params until they are suggested.
    return {**trial.system_attrs.get("fixed_params", {}), **trial.params}


def enqueue_untried(study, space: Space, limit: int, shuffle: int | None = None) -> None:
    """Enqueue up to ``limit`` designs of a finite space that no trial has tried or holds
    (in enumeration order, or a seeded random order with ``shuffle``)."""
    from optuna.trial import TrialState

    if limit <= 0:
        return
    held = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    tried = {
        tuple(sorted(trial_params(t).items()))
        for t in study.get_trials(deepcopy=False, states=held)
    }
    designs = list(assignments(space))
    if shuffle is not None:
        random.Random(shuffle).shuffle(designs)
    for params in designs:
        if limit <= 0:
            return
        if tuple(sorted(params.items())) not in tried:
            study.enqueue_trial(params)
            limit -= 1
