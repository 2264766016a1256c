"""Every registered interaction, with params drawn by hypothesis, verifies.

A new block registered with @register is picked up here with no new test code.
"""

import pytest
from hypothesis import given, settings

from geocompose.registry import REGISTRY, Kind
from geocompose.testing import compositions
from geocompose.verify import verify

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


@pytest.mark.parametrize(
    "kind", [Kind.RADIAL, Kind.ENVELOPE, Kind.NODE_EMBEDDING, Kind.GRAPH, Kind.READOUT]
)
def test_every_component_is_covered_by_a_verified_blueprint_or_composition(kind):
    """Components are exercised through compositions (radial, envelope, node) or the
    dedicated tests in tests/unit; this guards that each kind has entries at all."""
    assert REGISTRY.names(kind)
