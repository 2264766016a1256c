"""Search spaces: a blueprint with choices in place of values.

A value may be replaced by one of::

    {choice: [a, b, ...]}          # categorical; options may be mappings with choices of
                                   # their own, which makes them conditional
    {range: [low, high]}           # integers (both ints) or floats, inclusive
    {range: [low, high], log: true}

so ``interactions[0]: {choice: [{type: schnet}, {type: mace, correlation: {range: [1, 3]}}]}``
draws MACE's correlation only when MACE is chosen, and ``repeat: {range: [1, 4]}`` the
number of interaction layers. Spaces are read with the blueprint loader (same safety,
same located errors).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from geocompose.blueprint.loader import load_yaml
from geocompose.blueprint.sourcemap import SourceMap, format_knob
from geocompose.errors import BlueprintError

MARKERS = {"choice", "range"}


@dataclass(frozen=True)
class Choice:
    """A categorical knob; ``options`` are templates (plain values or sub-spaces)."""

    name: str
    options: tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """An integer or float interval, inclusive, optionally log-uniform."""

    name: str
    low: float
    high: float
    integer: bool
    log: bool = False


class Suggester(Protocol):
    """Where values come from: Optuna's trial, a random generator, an enumeration."""

    def categorical(self, name: str, count: int) -> int: ...

    def integer(self, name: str, low: int, high: int, log: bool) -> int: ...

    def real(self, name: str, low: float, high: float, log: bool) -> float: ...


@dataclass(frozen=True)
class Space:
    """A parsed search space: a blueprint template with Choice/Range nodes."""

    template: Any
    file: str

    @property
    def size(self) -> float:
        """Number of distinct candidates (inf when a float range is present)."""
        return _count(self.template)

    def sample(self, suggester: Suggester) -> dict:
        """One candidate blueprint (a plain dict)."""
        return _instantiate(self.template, suggester)

    def enumerate(self) -> Iterator[dict]:
        """Every candidate, for finite spaces."""
        if math.isinf(self.size):
            raise ValueError("a space with float ranges cannot be enumerated")
        yield from _all(self.template)

    def parameters(self) -> list[Choice | Range]:
        """Every Choice/Range node, in file order (conditional ones included)."""
        found: list[Choice | Range] = []
        _collect(self.template, found)
        return found


def read_space(path: str | Path, *, text: str | None = None) -> Space:
    """Load a search-space YAML; malformed choice nodes are refused at their location."""
    data, sourcemap = load_yaml(path, text=text)
    return Space(_parse(data, (), sourcemap), str(path))


def _parse(node: Any, path: tuple, where: SourceMap) -> Any:
    if isinstance(node, dict) and node and set(node) & MARKERS:
        return _parse_marker(node, path, where)
    if isinstance(node, dict):
        return {key: _parse(value, (*path, key), where) for key, value in node.items()}
    if isinstance(node, list):
        return [_parse(value, (*path, i), where) for i, value in enumerate(node)]
    return node


def _parse_marker(node: dict, path: tuple, where: SourceMap) -> Choice | Range:
    name = format_knob(path) or "<root>"
    location = where.locate(path)
    extra = set(node) - MARKERS - {"log"}
    if extra or ("choice" in node and "range" in node):
        raise BlueprintError(
            f"a search node has exactly one of `choice` or `range` (plus `log` for ranges); got keys {sorted(node)}",
            location,
            name,
        )
    if "choice" in node:
        options = node["choice"]
        if not isinstance(options, list) or not options:
            raise BlueprintError("`choice` needs a non-empty list of options", location, name)
        return Choice(
            name, tuple(_parse(o, (*path, "choice", i), where) for i, o in enumerate(options))
        )
    bounds, log = node["range"], node.get("log", False)
    numeric = (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b)
            for b in bounds
        )
    )
    if not numeric or bounds[0] > bounds[1]:
        raise BlueprintError(
            f"`range` needs [low, high] finite numbers with low <= high; got {bounds!r}",
            location,
            name,
        )
    if not isinstance(log, bool) or (log and bounds[0] <= 0):
        raise BlueprintError("`log: true` needs a positive range", location, name)
    integer = all(isinstance(b, int) for b in bounds)
    return Range(name, bounds[0], bounds[1], integer, log)


def _instantiate(node: Any, suggest: Suggester) -> Any:
    if isinstance(node, Choice):
        return _instantiate(
            node.options[suggest.categorical(node.name, len(node.options))], suggest
        )
    if isinstance(node, Range):
        if node.integer:
            return suggest.integer(node.name, int(node.low), int(node.high), node.log)
        return suggest.real(node.name, node.low, node.high, node.log)
    if isinstance(node, dict):
        return {k: _instantiate(v, suggest) for k, v in node.items()}
    if isinstance(node, list):
        return [_instantiate(v, suggest) for v in node]
    return node


def _count(node: Any) -> float:
    if isinstance(node, Choice):
        return sum(_count(o) for o in node.options)
    if isinstance(node, Range):
        return node.high - node.low + 1 if node.integer else math.inf
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return math.prod(_count(c) for c in children)


def _all(node: Any) -> Iterator[Any]:
    if isinstance(node, Choice):
        for option in node.options:
            yield from _all(option)
    elif isinstance(node, Range):
        yield from range(int(node.low), int(node.high) + 1)
    elif isinstance(node, dict):
        keys = list(node)
        for values in itertools.product(*(list(_all(node[k])) for k in keys)):
            yield dict(zip(keys, values))
    elif isinstance(node, list):
        for values in itertools.product(*(list(_all(v)) for v in node)):
            yield list(values)
    else:
        yield node


def _collect(node: Any, found: list) -> None:
    if isinstance(node, (Choice, Range)):
        found.append(node)
    children = (
        node.options
        if isinstance(node, Choice)
        else node.values()
        if isinstance(node, dict)
        else node
        if isinstance(node, list)
        else []
    )
    for child in children:
        _collect(child, found)
