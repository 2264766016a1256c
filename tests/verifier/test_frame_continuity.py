"""The continuity check through degenerate frames must catch a discontinuous strategy
that claims continuity, pass the one that is continuous, and measure the others."""

import copy
from pathlib import Path
from typing import Literal

import pytest

from geocompose.blueprint import read_blueprint
from geocompose.nn.symmetry.frame_averaging import Canonicalisation, CanonicalisationParams
from geocompose.nn.symmetry.weighted_frames import WeightedFrames, WeightedFramesParams
from geocompose.registry import REGISTRY, Kind, register
from geocompose.verification import Verdict, verify
from geocompose.verification.frame_paths import CHECKS as PATH_CHECKS

ROOT = Path(__file__).parents[2]
MLP = read_blueprint(ROOT / "blueprints" / "mlp-weighted-frames.yaml").blueprint.model_dump(
    mode="json"
)
ROW = "continuity through degenerate frames"


def with_strategy(strategy) -> dict:
    bp = copy.deepcopy(MLP)
    bp["symmetry"]["strategy"] = strategy
    return bp


class HardestPairParams(WeightedFramesParams):
    type: Literal["hardest_pair_test"] = "hardest_pair_test"


class HardestPair(WeightedFrames):
    """Planted: weighted frames keeping only the pairs tied for the largest weight (a
    hard argmax: still exact, but it switches pairs as a triangle passes through the
    equilateral one), registered as continuous."""

    Params = HardestPairParams

    def __init__(self, params, upstream, ctx):
        super().__init__(params.model_copy(update={"keep": 1 - 1e-9}), upstream, ctx)


class ClaimedSmoothCanonicalisationParams(CanonicalisationParams):
    type: Literal["smooth_canonicalisation_test"] = "smooth_canonicalisation_test"


class ClaimedSmoothCanonicalisation(Canonicalisation):
    """Planted: one PCA frame per structure, registered as continuous."""

    Params = ClaimedSmoothCanonicalisationParams


@pytest.mark.parametrize("planted", [HardestPair, ClaimedSmoothCanonicalisation])
def test_a_discontinuous_strategy_claiming_continuity_is_caught(planted):
    register(Kind.STRATEGY, exact=True, frames=True, smooth=True)(planted)
    try:
        report = verify(with_strategy(planted.entry.name), checks=PATH_CHECKS)
    finally:
        REGISTRY.remove(Kind.STRATEGY, planted.entry.name)
    row = report.check(ROW)
    assert row.verdict is Verdict.FAIL, report.text()
    assert row.error > 1e-3 and "x the slope" in row.detail


def test_weighted_frames_hold_the_claim_and_others_are_measured():
    held = verify(MLP, checks=PATH_CHECKS).check(ROW)
    assert held.verdict is Verdict.PASS and held.error < 1e-5
    for strategy in ("frame_averaging", "canonicalisation", "sign_equivariant_frames"):
        row = verify(with_strategy(strategy), checks=PATH_CHECKS).check(ROW)
        assert row.verdict is Verdict.MEASURED and row.error > 1e-3, (strategy, row)


def test_models_without_frames_skip_the_check():
    report = verify(with_strategy("none"), checks=PATH_CHECKS)
    assert report.check(ROW).verdict is Verdict.SKIPPED
