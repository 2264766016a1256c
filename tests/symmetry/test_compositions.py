"""Random valid compositions drawn from the registry verify (compositions nobody wrote)."""

from hypothesis import given, settings

import geocompose
from geocompose.testing import compositions
from geocompose.verification import verify


@settings(max_examples=6)
@given(compositions(max_interactions=3))
def test_drawn_composition_type_checks_and_verifies(blueprint):
    trace = geocompose.check(blueprint)
    assert trace.derived.covers(trace.claim)
    report = verify(blueprint, samples=1, seed=2)
    assert report.passed, f"{blueprint}\n{report.text()}"
