"""Locality, extensivity and deployment precision: each catches a planted defect that
every other check of the battery misses, and none fires on an honest model.

The defects are user blocks registered as a user would register a new design:
* a hidden range: a pair term up to 1.5 x the cutoff, invariant and smooth, that the
  graph does not see (only locality catches it; far copies are farther apart);
* a per-structure bias in the energy readout (forces untouched: only extensivity);
* a term that is zero in exact arithmetic but computed by cancellation at the scale of
  the coordinates (float64 checks pass; only float32 at large coordinates catches it).
"""

from typing import Literal

import pytest
import torch

from geocompose.nn.block import Block
from geocompose.nn.interaction.base import InteractionParams
from geocompose.nn.ops.message import EdgeView, aggregate
from geocompose.nn.readout.pooling import SumReadout, SumReadoutParams
from geocompose.registry import REGISTRY, Family, Group, Kind, register
from geocompose.types import Signature
from geocompose.types import fields as F
from geocompose.verification import Verdict, verify

CUTOFF = 4.0


def _reads(upstream, names):
    return {name: upstream[name] for name in names}


class HiddenRangeParams(InteractionParams):
    type: Literal["hidden_range"] = "hidden_range"


class HiddenRange(Block):
    """Adds ``sum_j relu(1.5 r_c - r_ij)^3`` over *all* atoms of the structure."""

    Params = HiddenRangeParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        reads = _reads(upstream, (F.NODE_FEATURES, F.POSITIONS, F.BATCH))
        return Signature(reads, {F.NODE_FEATURES: reads[F.NODE_FEATURES]}, Group.O3)

    def forward(self, state):
        x, b = state[F.POSITIONS], state[F.BATCH]
        eye = torch.eye(len(x), dtype=x.dtype)
        r = ((x[:, None] - x[None]) ** 2).sum(-1).add(eye).sqrt()  # (N, N), no zero on diagonal
        same = (b[:, None] == b[None]).to(x.dtype) * (1 - eye)
        term = (torch.relu(1.5 * CUTOFF - r) ** 3 * same).sum(1, keepdim=True) / 100
        return {F.NODE_FEATURES: state[F.NODE_FEATURES] + term}


class BiasedSumParams(SumReadoutParams):
    type: Literal["biased_sum"] = "biased_sum"


class BiasedSum(SumReadout):
    """A sum readout plus 1.0 per structure: forces never see it."""

    Params = BiasedSumParams

    def forward(self, state):
        out = super().forward(state)
        out[self.output] = out[self.output] + 1.0
        return out


class CancellationParams(InteractionParams):
    type: Literal["cancellation"] = "cancellation"


class Cancellation(Block):
    """Adds ``10 (|x_i|^2 + |x_j|^2 - 2 x_i.x_j - |r_ij|^2)`` per edge: exactly zero, but
    computed at the scale of |x|^2 (a distance written the 'fast' way)."""

    Params = CancellationParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        names = (F.NODE_FEATURES, F.POSITIONS, F.EDGE_INDEX, F.EDGE_VECTORS)
        reads = _reads(upstream, names)
        return Signature(reads, {F.NODE_FEATURES: reads[F.NODE_FEATURES]}, Group.O3)

    def forward(self, state):
        edges = EdgeView.from_state(state)
        senders, receivers = state[F.EDGE_INDEX]
        vec = state[F.EDGE_VECTORS]
        xi = state[F.POSITIONS][receivers]
        xj = xi + vec  # the sender's image
        zero = (xi * xi).sum(1) + (xj * xj).sum(1) - 2 * (xi * xj).sum(1) - (vec * vec).sum(1)
        term = aggregate(10 * zero.unsqueeze(1), edges)
        return {F.NODE_FEATURES: state[F.NODE_FEATURES] + term}


@pytest.fixture(scope="module", autouse=True)
def planted():
    register(Kind.INTERACTION, family=Family.INVARIANT, body_order=2, periodic=False)(HiddenRange)
    register(Kind.READOUT)(BiasedSum)
    register(Kind.INTERACTION, family=Family.INVARIANT, body_order=2)(Cancellation)
    yield
    REGISTRY.remove(Kind.INTERACTION, "hidden_range")
    REGISTRY.remove(Kind.READOUT, "biased_sum")
    REGISTRY.remove(Kind.INTERACTION, "cancellation")


def blueprint(interactions=(), energy="sum"):
    return {
        "name": "planted",
        "symmetry": {"group": "O(3)"},
        "graph": {"type": "radius", "cutoff": CUTOFF},
        "embedding": {
            "species": ["H", "C", "O", "Cu"],
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "gaussian", "num": 8},
            "envelope": {"type": "polynomial"},
        },
        "interactions": [{"type": "schnet", "filters": 8}, *interactions],
        "readout": {"energy": {"type": energy, "hidden": [8]}, "forces": {"type": "gradient"}},
    }


def checks_of(bp):
    report = verify(bp, samples=2, seed=0)
    return report, {c.name: c for c in report.checks}


def failed(report) -> set[str]:
    return {c.name for c in report.failures}


def test_honest_model_holds_every_new_claim():
    report, c = checks_of(blueprint())
    assert report.passed, report.text()
    for name in ("locality", "extensivity", "float32 rotation", "float32 translation 1000 Å"):
        assert c[name].verdict is Verdict.PASS, report.text()
    assert c["extensivity"].error < 1e-12 and c["locality"].error < 1e-12


def test_hidden_range_beyond_the_cutoff_is_caught_by_locality_only():
    report, c = checks_of(blueprint([{"type": "hidden_range"}]))
    assert failed(report) == {"locality"}, report.text()
    assert "ghost" in c["locality"].detail
    assert c["extensivity"].verdict is Verdict.PASS  # copies are farther apart than its range


def test_per_structure_bias_is_caught_by_extensivity_only():
    report, c = checks_of(blueprint(energy="biased_sum"))
    assert failed(report) == {"extensivity"}, report.text()
    assert c["extensivity"].error > 1e-3


def test_cancellation_at_large_coordinates_is_caught_in_float32_only():
    report, c = checks_of(blueprint([{"type": "cancellation"}]))
    assert "float32 translation 1000 Å" in failed(report), report.text()
    assert all(name.startswith("float32") for name in failed(report)), report.text()
    assert c["translation"].verdict is Verdict.PASS and c["rotation"].verdict is Verdict.PASS


def test_an_intensive_readout_is_measured_not_held_to_extensivity():
    report, c = checks_of(blueprint(energy="mean"))
    assert c["extensivity"].verdict is Verdict.MEASURED and c["extensivity"].error > 1e-3
    assert c["locality"].verdict is Verdict.MEASURED
    assert report.passed, report.text()
