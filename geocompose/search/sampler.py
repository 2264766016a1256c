"""Type-checked sampling: every candidate passes the typing rules before it costs a trial."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field

from geocompose.compiler import check, load
from geocompose.errors import BlueprintError
from geocompose.search.space import Space


class RandomSuggester:
    """Independent uniform (or log-uniform) draws from a seeded generator."""

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    def categorical(self, name: str, count: int) -> int:
        return self.rng.randrange(count)

    def integer(self, name: str, low: int, high: int, log: bool) -> int:
        if log:
            return round(math.exp(self.rng.uniform(math.log(low), math.log(high))))
        return self.rng.randint(low, high)

    def real(self, name: str, low: float, high: float, log: bool) -> float:
        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        return self.rng.uniform(low, high)


def refusal_reason(candidate: dict) -> str | None:
    """None when the candidate type-checks; else its first error, numbers generalised so
    that refusals of the same kind group together."""
    try:
        check(candidate)
    except BlueprintError as err:
        first = err.errors[0] if hasattr(err, "errors") else err
        knob = re.sub(r"#\d+", "", first.knob or "")
        # Multiplicities and plain numbers vary between candidates; irreps like 0e do not.
        message = re.sub(r"\d+x", "Nx", first.message)
        message = re.sub(r"(?<![\w.])\d+(\.\d+)?(?![\deoy])", "N", message)
        return f"{knob}: {message}" if knob else message
    return None


def interaction_stack(candidate: dict) -> list[tuple[str, int]]:
    """``(type, repeat)`` of each interaction as the compiler reads them (its defaults
    filled in); empty when the candidate does not validate."""
    try:
        interactions = load(candidate).blueprint.interactions
    except BlueprintError:
        return []
    return [(params.type, params.repeat) for params in interactions]


@dataclass
class SpaceReport:
    """What fraction of a space type-checks, and why the rest does not."""

    size: float
    examined: int
    enumerated: bool
    valid: int = 0
    reasons: Counter = field(default_factory=Counter)

    @property
    def valid_fraction(self) -> float:
        return self.valid / self.examined if self.examined else 0.0


def survey(
    space: Space, *, enumerate_up_to: int = 2000, samples: int = 500, seed: int = 0
) -> SpaceReport:
    """Type-check the whole space when it is small, a random sample otherwise."""
    enumerated = space.size <= enumerate_up_to
    if enumerated:
        candidates = list(space.enumerate())
    else:
        suggester = RandomSuggester(seed)
        candidates = [space.sample(suggester) for _ in range(samples)]
    report = SpaceReport(size=space.size, examined=len(candidates), enumerated=enumerated)
    for candidate in candidates:
        reason = refusal_reason(candidate)
        if reason is None:
            report.valid += 1
        else:
            report.reasons[reason] += 1
    return report
