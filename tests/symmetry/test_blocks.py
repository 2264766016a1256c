"""Every registered knob, with params drawn by hypothesis, verifies at its slot of a
drawn composition.

A new knob of any kind registered with @register is picked up here with no new test
code (tests/symmetry/test_new_knobs.py shows it with throwaway knobs).
"""

import pytest
from hypothesis import given, settings

from geocompose.registry import REGISTRY, Kind
from geocompose.testing import compositions
from geocompose.verification import verify

INTERACTIONS = REGISTRY.names(Kind.INTERACTION)


@pytest.mark.parametrize("name", INTERACTIONS)
def test_interaction_block_verifies(name):
    @settings(max_examples=2)
    @given(compositions(interactions=[name], max_interactions=1))
    def check(blueprint):
        assert blueprint["interactions"][0]["type"] == name
        report = verify(blueprint, samples=1, seed=1)
        assert report.passed, f"{blueprint}\n{report.text()}"

    check()


@pytest.mark.parametrize("kind", list(Kind), ids=str)
def test_every_component_is_covered_by_a_verified_blueprint_or_composition(kind):
    """Every kind has entries, each verified below (interactions above, strategies in
    test_strategies.py; the edge embedding is built in every composition)."""
    assert REGISTRY.names(kind)


COMPONENTS = [
    (kind, name)
    for kind in (Kind.GRAPH, Kind.NODE_EMBEDDING, Kind.RADIAL, Kind.ENVELOPE, Kind.ANGULAR)
    + (Kind.READOUT,)
    for name in REGISTRY.names(kind)
]


@pytest.mark.parametrize(("kind", "name"), COMPONENTS, ids=lambda v: str(getattr(v, "value", v)))
def test_component_verifies_in_a_drawn_composition(kind, name):
    """Each registered component, at its slot of a drawn composition, verifies."""

    @settings(max_examples=1)
    @given(compositions(max_interactions=1, choose={kind: [name]}))
    def check(blueprint):
        report = verify(blueprint, samples=1, seed=1)
        assert report.passed, f"{blueprint}\n{report.text()}"

    check()
