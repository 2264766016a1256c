"""The trained protocol: seeds, warm start, statistics, and that it can learn."""

from __future__ import annotations

import pytest
from expressivity_cases import tiny

from geocompose.expressivity import (
    Head,
    Protocol,
    Trained,
    build_classifier,
    compile_classifier,
    k_chains,
    run_suite,
    train_pair,
    two_body_pair,
)


def counting_build(name: str, layers: int):
    classifier = build_classifier(tiny(name), layers, Head.INVARIANT)
    calls: list[int] = []

    def build(seed: int):
        calls.append(seed)
        return compile_classifier(classifier, seed=seed)

    return build, calls


def test_fresh_seeds_rebuild_warm_start_continues():
    build, calls = counting_build("schnet", 1)
    fresh = train_pair(build, k_chains(4), Protocol(epochs=2, seeds=3))
    assert calls == [0, 1, 2] and not fresh.warm_start
    build, calls = counting_build("schnet", 1)
    warm = train_pair(build, k_chains(4), Protocol(epochs=2, seeds=3, warm_start=True))
    assert calls == [0] and warm.warm_start  # one model, trained on from seed to seed


def test_schnet_never_beats_chance_on_k_chains():
    """Identical features for both chains: whatever the weights, both get one class."""
    build, _ = counting_build("schnet", 2)
    result = train_pair(build, k_chains(4), Protocol(epochs=15, seeds=2, lr=1e-2))
    assert result.best == [50.0, 50.0] and result.final == [50.0, 50.0]
    assert result.cell() == "50"


def test_a_separating_model_learns_the_pair():
    """With a large learning rate PaiNN learns the two-body pair within 30 epochs (the
    loop, loss and accuracy work; the paper's lr 1e-4 is far slower)."""
    build, _ = counting_build("painn", 1)
    result = train_pair(build, two_body_pair(), Protocol(epochs=30, seeds=1, lr=1e-2))
    assert result.best == [100.0]


def test_statistics_are_population_mean_and_std():
    result = Trained(
        best=[100.0, 50.0, 100.0, 100.0], final=[50.0] * 4, seconds=0.0, warm_start=False
    )
    assert result.mean == pytest.approx(87.5)
    assert result.std == pytest.approx(21.650635)  # numpy's default ddof=0, as the paper
    assert result.cell() == "88 ± 21.7"


@pytest.mark.slow
def test_paper_protocol_schnet_k_chains_fresh_and_warm():
    """The full protocol (Adam 1e-4, 100 epochs, 10 seeds) on the shipped SchNet: 50 ± 0
    at every depth tried, fresh or warm-started (the invariant WL bound)."""
    for warm in (False, True):
        rows = run_suite(
            ["blueprints/schnet.yaml"], "chains", layers=[1, 3], protocol=Protocol(warm_start=warm)
        )
        assert [row.cell() for row in rows] == ["50", "50"]
