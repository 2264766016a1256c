"""The three suites and the runner that sweeps blueprints x pairs x layers.

========================  ==========================================  ===========  ===========
suite                     pairs                                       head         layers
========================  ==========================================  ===========  ===========
``chains``                k-chains (``k = 4``)                        invariant    1-6
``counterexamples``       two-body, three-body (Pozdnyakov 2020)      invariant    1
``symmetric``             L-fold stars, ``L = 2, 3, 5, 10``           orientation  1
========================  ==========================================  ===========  ===========

The layer sweep covers the survey's columns (1-5) and the paper's (2-6 for k = 4);
counterexamples and symmetric structures use one layer, as the paper does, since they
test what a single layer sees of one neighbourhood.

Example::

    rows = run_suite(["blueprints/schnet.yaml"], "chains", quick=True)
    for row in rows:
        print(row.blueprint, row.pair, row.layers, row.result.cell())
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from geocompose.expressivity.classifier import (
    Head,
    blueprint_data,
    build_classifier,
    compile_classifier,
)
from geocompose.expressivity.pairs import (
    GeometricPair,
    k_chains,
    rotsym_pair,
    three_body_pair,
    two_body_pair,
)
from geocompose.expressivity.protocol import (
    Distinguished,
    Protocol,
    Trained,
    distinguish,
    single_thread,
    train_pair,
)
from geocompose.expressivity.wl import OracleResult, oracle

__all__ = ["ORACLES", "SUITES", "Row", "Suite", "oracle_rows", "run_suite", "suite_pairs"]


@dataclass(frozen=True)
class Suite:
    """Which pairs, which head, which layers by default."""

    name: str
    head: Head
    layers: tuple[int, ...]
    description: str


SUITES: dict[str, Suite] = {
    "chains": Suite(
        "chains",
        Head.INVARIANT,
        (1, 2, 3, 4, 5, 6),
        "k-chains: propagating geometric information beyond a neighbourhood (depth)",
    ),
    "counterexamples": Suite(
        "counterexamples",
        Head.INVARIANT,
        (1,),
        "pairs that distances (2-body) or distances and angles (3-body) cannot separate (body order)",
    ),
    "symmetric": Suite(
        "symmetric",
        Head.ORIENTATION,
        (1,),
        "L-fold symmetric stars turned by pi/L: the order of tensors a layer uses (tensor order)",
    ),
}
ALIASES = {"rotsym": "symmetric", "counterexample": "counterexamples", "kchains": "chains"}
DEFAULT_FOLDS = (2, 3, 5, 10)


def suite_pairs(
    suite: str, k: int = 4, folds: Sequence[int] = DEFAULT_FOLDS
) -> list[GeometricPair]:
    """The pairs of a suite (``k`` for chains, ``folds`` for symmetric structures)."""
    name = ALIASES.get(suite, suite)
    if name == "chains":
        return [k_chains(k)]
    if name == "counterexamples":
        return [two_body_pair(), three_body_pair()]
    if name == "symmetric":
        return [rotsym_pair(fold) for fold in folds]
    raise KeyError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")


@dataclass
class Row:
    """One (blueprint, pair, layers) cell of a table."""

    blueprint: str
    pair: str
    layers: int
    readout: str
    result: Trained | Distinguished | OracleResult

    @property
    def is_oracle(self) -> bool:
        return isinstance(self.result, OracleResult)

    def cell(self) -> str:
        return self.result.cell()

    @property
    def accuracy(self) -> float:
        """Mean accuracy (%): trained, or what a perfect head could reach at init."""
        return self.result.mean if isinstance(self.result, Trained) else self.result.accuracy

    @property
    def std(self) -> float:
        """Population std (%) over seeds; 0 for an oracle."""
        if isinstance(self.result, Distinguished):
            return float(np.std([100.0 if s else 50.0 for s in self.result.separated]))
        return self.result.std


ORACLES = ("igwl", "gwl")
ORACLE_SUITES = ("chains", "counterexamples")
"""Suites whose pairs the invariant oracles speak to (the stars are congruent and need an
orientation-sensitive output, so every invariant test is at 50 % on them by construction)."""


def oracle_rows(
    suite: str,
    *,
    layers: Sequence[int] | None = None,
    k: int = 4,
    folds: Sequence[int] = DEFAULT_FOLDS,
) -> list[Row]:
    """IGWL and GWL (O(3)) rows for a suite: iterations = layers, 100 where the test
    separates the pair, else 50 (see :mod:`geocompose.expressivity.wl`)."""
    spec = SUITES[ALIASES.get(suite, suite)]
    layers = tuple(layers) if layers else spec.layers
    rows = []
    for kind in ORACLES:
        for pair in suite_pairs(spec.name, k, folds):
            for result in oracle(pair, kind, layers):
                rows.append(Row(kind.upper(), pair.name, result.iterations, "oracle", result))
    return rows


def run_suite(
    blueprints: Sequence[str | Path | dict],
    suite: str,
    *,
    layers: Sequence[int] | None = None,
    quick: bool = False,
    seeds: int | None = None,
    protocol: Protocol | None = None,
    k: int = 4,
    folds: Sequence[int] = DEFAULT_FOLDS,
    dtype: torch.dtype = torch.float64,
    progress: Callable[[str, int], None] | None = None,
) -> list[Row]:
    """Sweep blueprints x the suite's pairs x layers.

    Args:
        blueprints: paths or dicts.
        suite: ``chains``, ``counterexamples`` or ``symmetric`` (alias ``rotsym``).
        layers: repeats of the first interaction; the suite's default when None.
        quick: random-init distinguishability instead of training.
        seeds: weight draws (quick: default 3; trained: ``protocol.seeds``).
        protocol: the trained protocol (the paper's by default).
        k, folds: chain length; symmetry orders of the stars.
        dtype: float64 by default (separations at init can be ~1e-12 relative).
        progress: ``progress(label, steps)`` after each unit of work; a unit is one
            epoch when training, one (blueprint, pair, layers) cell when quick.

    Raises:
        BlueprintError: a blueprint is invalid or no classifier readout fits it.
    """
    spec = SUITES[ALIASES.get(suite, suite)]
    pairs = suite_pairs(spec.name, k, folds)
    layers = tuple(layers) if layers else spec.layers
    protocol = protocol or Protocol()
    if seeds is not None:
        protocol = Protocol(
            protocol.epochs, protocol.lr, seeds, protocol.warm_start, protocol.plateau
        )
    rows: list[Row] = []
    with single_thread():
        for source in blueprints:
            data = blueprint_data(source)
            name = str(data.get("name", source))
            for pair in pairs:
                for depth in layers:
                    classifier = build_classifier(data, depth, spec.head)

                    def build(seed: int, classifier=classifier):
                        return compile_classifier(classifier, seed=seed, dtype=dtype)

                    label = f"{name} {pair.name} L={depth}"
                    if quick:
                        result = distinguish(build, pair, seeds=seeds or 3)
                        if progress:
                            progress(label, 1)
                    else:
                        tick = (lambda label=label: progress(label, 1)) if progress else None
                        result = train_pair(build, pair, protocol, on_epoch=tick)
                    rows.append(Row(name, pair.name, depth, classifier.readout_name, result))
    return rows
