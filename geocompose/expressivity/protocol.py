"""Two ways to ask whether a model tells a pair apart: train it, or look at random init.

**Trained** (:func:`train_pair`, the paper's protocol, the ``slow`` path): Adam at
``lr = 1e-4``, 100 epochs, batch size 1 (each epoch: both graphs in random order, one
step each), cross-entropy on two logits, learning rate times 0.9 after 25 epochs without
a better accuracy (floor 1e-5), as the public code does. A seed's accuracy is its best
accuracy on the pair over the epochs (the public code selects the epoch on the same
pair it reports), so it is 0, 50 or 100; a cell is the mean ± population std over
seeds. The public code builds one model and keeps training it from seed to seed, each
seed starting from the previous seed's weights (``warm_start=True`` here), which
inflates later seeds; by default every seed starts from fresh weights drawn from it.

**Distinguishability** (:func:`distinguish`, the quick, deterministic path): at random
init, in float64, does the model give the two graphs different ``pair_features``
beyond float noise? The noise floor is measured on the model itself: the largest change
of its features under transformations that must leave them unchanged (a permutation of
the atoms with a translation; a random rotation when the features are invariant; the
structure's own symmetry rotation for a rotationally symmetric pair). A model that does
not separate the pair at init in any seed computes the same features for both graphs
(often bit-identical), which no head can undo; one that separates them can, with the
right head, reach 100 %, though training may not get there.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional

from geocompose.data import Batch
from geocompose.expressivity.classifier import (
    PairClassifier,
    graph_batch,
    model_cutoff,
    pair_batches,
)
from geocompose.expressivity.pairs import PAPER_CUTOFF, GeometricPair, rotation_z
from geocompose.nn.symmetry.draws import use_generator

__all__ = [
    "NOISE_RATIO",
    "Distinguished",
    "Protocol",
    "Trained",
    "distinguish",
    "single_thread",
    "train_pair",
]

NOISE_RATIO = 100.0
"""A gap counts as a separation when it exceeds the noise floor this many times."""
ULP_FLOOR = 1e-15
"""The noise floor is never taken below this times the features' scale (a few float64
ulps), whatever the probes measured."""

Build = Callable[[int], PairClassifier]
"""``seed -> classifier`` with weights drawn from that seed."""


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread, then restore: graphs of a few atoms are dominated by
    per-op overhead, which extra threads only add to (30x slower on a loaded 2-core host)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Protocol:
    """The trained protocol's settings (defaults: the paper's)."""

    epochs: int = 100
    lr: float = 1e-4
    seeds: int = 10
    warm_start: bool = False
    plateau: bool = True


def _stats(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std())  # population std, as np.std


@dataclass
class Trained:
    """Per-seed accuracies (%) of the trained protocol on one pair."""

    best: list[float]
    final: list[float]
    seconds: float
    warm_start: bool

    @property
    def mean(self) -> float:
        return _stats(self.best)[0]

    @property
    def std(self) -> float:
        return _stats(self.best)[1]

    def cell(self) -> str:
        """``50``, ``100`` or ``90 ± 20`` as the paper prints it."""
        mean, std = _stats(self.best)
        return f"{mean:.0f}" if std < 0.05 else f"{mean:.0f} ± {std:.1f}"


def accuracy(model: PairClassifier, batches: list[Batch], labels: tuple[int, int]) -> float:
    """Percentage of the pair's graphs classified right (0, 50 or 100)."""
    model.eval()
    with torch.no_grad():
        predicted = [int(model(b).argmax(dim=-1)[0]) for b in batches]
    return 100.0 * sum(p == y for p, y in zip(predicted, labels)) / len(labels)


def train_pair(
    build: Build, pair: GeometricPair, protocol: Protocol = Protocol(), on_epoch=None
) -> Trained:
    """Train a fresh (or warm-started) classifier per seed; best and final accuracy each.

    Args:
        build: makes the classifier for a seed.
        pair: the two graphs.
        protocol: optimiser, epochs, seeds, warm start.
        on_epoch: called after every epoch (progress bars).
    """
    start = time.perf_counter()
    best, final = [], []
    model = None
    for seed in range(protocol.seeds):
        if model is None or not protocol.warm_start:
            model = build(seed)
        batches = pair_batches(model.model, pair)
        targets = [torch.tensor([label]) for label in pair.labels]
        generator = torch.Generator().manual_seed(seed)
        # Stochastic strategies (frames, rotations) draw from their own seeded generator.
        use_generator(model, torch.Generator().manual_seed(seed))
        optimiser = torch.optim.Adam(model.parameters(), lr=protocol.lr)
        schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimiser, mode="max", factor=0.9, patience=25, min_lr=1e-5
        )
        seed_best = -math.inf
        acc = 0.0
        for _ in range(protocol.epochs):
            model.train()
            for index in torch.randperm(len(batches), generator=generator).tolist():
                optimiser.zero_grad()
                loss = functional.cross_entropy(model(batches[index]), targets[index])
                loss.backward()
                optimiser.step()
            acc = accuracy(model, batches, pair.labels)
            seed_best = max(seed_best, acc)
            if protocol.plateau:
                schedule.step(acc)
            if on_epoch is not None:
                on_epoch()
        best.append(seed_best)
        final.append(acc)
    return Trained(best, final, time.perf_counter() - start, protocol.warm_start)


@dataclass
class Distinguished:
    """Random-init separation of one pair, per seed."""

    gaps: list[float] = field(default_factory=list)  # max |features(G0) - features(G1)|
    noise: list[float] = field(default_factory=list)  # largest change under the probes
    scales: list[float] = field(default_factory=list)  # max |features| of the two graphs

    def floor(self, i: int) -> float:
        return max(self.noise[i], ULP_FLOOR * self.scales[i])

    @property
    def ratios(self) -> list[float]:
        """Gap over noise floor, per seed."""
        return [g / self.floor(i) for i, g in enumerate(self.gaps)]

    @property
    def separated(self) -> list[bool]:
        return [r > NOISE_RATIO for r in self.ratios]

    @property
    def relative_gaps(self) -> list[float]:
        return [g / s if s > 0 else 0.0 for g, s in zip(self.gaps, self.scales)]

    @property
    def accuracy(self) -> float:
        """The accuracy a perfect head could reach at init: 100 where separated, else 50,
        averaged over seeds."""
        return float(np.mean([100.0 if s else 50.0 for s in self.separated]))

    def cell(self) -> str:
        """``✓ 3e-11``: separated in every seed (the smallest gap, relative to the
        features' size); ``2/3 ✓``: in some seeds; ``~ 1e-13``: a gap between 10 and 100
        times the noise floor (inconclusive); ``✗``: at the noise floor; ``✗ =0``: the
        two graphs gave bit-identical features in every seed."""
        hits = self.separated
        if all(hits):
            return f"✓ {min(self.relative_gaps):.0e}"
        if any(hits):
            return f"{sum(hits)}/{len(hits)} ✓"
        if max(self.ratios) > NOISE_RATIO / 10:
            return f"~ {max(self.relative_gaps):.0e}"
        return "✗ =0" if max(self.gaps) == 0.0 else "✗"


def _probe_features(
    model: PairClassifier,
    positions: np.ndarray,
    edges,
    pair: GeometricPair,
    rng: np.random.Generator,
    probes: int,
) -> tuple[torch.Tensor, float]:
    """Features of one graph and the largest change under symmetry probes."""
    inner = model.model
    dtype = inner.dtype
    reference = model.features(graph_batch(inner, positions, edges, dtype))[0]
    noise = 0.0
    scale = model_cutoff(inner) / PAPER_CUTOFF
    for _ in range(probes):
        perm = rng.permutation(len(positions))
        where = np.argsort(perm)  # new index of old atom i
        moved = positions[perm] + rng.normal(size=3) * scale
        mapped = [(int(where[i]), int(where[j])) for i, j in edges]
        variants = [moved]
        if not model.classifier.orientation_sensitive:
            q, r = np.linalg.qr(rng.normal(size=(3, 3)))
            q = q * np.sign(np.diag(r))
            if np.linalg.det(q) < 0:
                q[:, 0] = -q[:, 0]  # proper: SO(3)-only models are not reflection-invariant
            variants.append(moved @ q.T)
        if pair.fold:
            variants.append(moved @ rotation_z(2 * math.pi / pair.fold).T)
        for variant in variants:
            out = model.features(graph_batch(inner, variant, mapped, dtype))[0]
            noise = max(noise, float((out - reference).abs().max()))
    return reference, noise


def distinguish(
    build: Build, pair: GeometricPair, seeds: int = 3, probes: int = 2
) -> Distinguished:
    """Random-init separation of ``pair`` for seeds ``0..seeds-1`` (eval mode, no grad).

    Args:
        build: makes the classifier for a seed (float64 weights expected).
        pair: the two graphs.
        seeds: weight draws.
        probes: symmetry probes per graph and seed (each a permutation with a
            translation, plus a rotation where it must not matter).
    """
    result = Distinguished()
    for seed in range(seeds):
        model = build(seed)
        model.eval()
        rng = np.random.default_rng(seed)
        scale = model_cutoff(model.model) / PAPER_CUTOFF
        with torch.no_grad():
            features, noise = zip(
                *(
                    _probe_features(model, pos * scale, edges, pair, rng, probes)
                    for pos, edges in zip(pair.positions, pair.edges)
                )
            )
        result.gaps.append(float((features[0] - features[1]).abs().max()))
        result.noise.append(max(noise))
        result.scales.append(float(max(f.abs().max() for f in features)))
    return result
