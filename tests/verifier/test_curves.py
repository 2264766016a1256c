"""Measured physicality: diatomic curves and NVE drift each expose a planted defect that
every claimed check lets through (the report still passes: these are figures)."""

import math
from typing import Literal

import pytest
import torch

from geocompose.nn.embedding.base import Envelope
from geocompose.registry import REGISTRY, Kind, KnobModel, register
from geocompose.verification import FULL_CHECKS, verify

CUTOFF = 4.0


class SteppedEnvelopeParams(KnobModel):
    type: Literal["stepped_cosine"] = "stepped_cosine"


class SteppedEnvelope(Envelope):
    """A cosine envelope, smooth at the cutoff, with a 50 % step at half the cutoff."""

    Params = SteppedEnvelopeParams

    def of_lengths(self, lengths):
        inside = (lengths < self.cutoff).to(lengths.dtype)
        cosine = 0.5 * (torch.cos(math.pi * lengths / self.cutoff) + 1) * inside
        return cosine * (1 + 0.5 * (lengths > self.cutoff / 2).to(lengths.dtype))


@pytest.fixture(scope="module", autouse=True)
def planted():
    register(Kind.ENVELOPE, smooth=True)(SteppedEnvelope)
    yield
    REGISTRY.remove(Kind.ENVELOPE, "stepped_cosine")


def blueprint(envelope="cosine", interaction="schnet", forces="gradient"):
    return {
        "name": "curves",
        "symmetry": {"group": "O(3)"},
        "graph": {"type": "radius", "cutoff": CUTOFF},
        "embedding": {
            "species": ["H", "C"],
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "gaussian", "num": 8},
            "envelope": {"type": envelope},
        },
        "interactions": [{"type": interaction}],
        "readout": {"energy": {"type": "sum", "hidden": [8]}, "forces": {"type": forces}},
    }


def figures(bp):
    report = verify(bp, samples=1, seed=0, checks=FULL_CHECKS)
    return report, {c.name: c for c in report.checks}


def test_a_jump_inside_the_cutoff_shows_in_the_diatomic_curves_only():
    honest_report, honest = figures(blueprint())
    report, stepped = figures(blueprint("stepped_cosine"))
    assert report.passed and honest_report.passed, report.text()  # no claim sees it
    assert stepped["continuity at cutoff"].error < 1e-9
    jump = stepped["diatomic jumps"]
    assert jump.error > 10 * honest["diatomic jumps"].error, (jump, honest["diatomic jumps"])
    assert "at 2.00 Å" in jump.detail or "at 1.95 Å" in jump.detail  # half the cutoff


def test_direct_forces_drift_in_nve_where_gradient_forces_do_not():
    _, gradient = figures(blueprint(interaction="painn"))
    report, direct = figures(blueprint(interaction="painn", forces="direct_forces"))
    assert report.passed, report.text()  # direct forces are never claimed conservative
    assert not any(c.name.startswith("conservative") and c.error is not None for c in report.checks)
    drift = direct["NVE energy drift"].error
    assert drift > 100 * gradient["NVE energy drift"].error, (drift, gradient["NVE energy drift"])
