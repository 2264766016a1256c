"""The SO(2) implementation of the spherical edge product is drawn by the registry's
composition strategy (the ``tensor_product`` field names it among its examples), and
the drawn models verify exactly."""

import pytest
from hypothesis import HealthCheck, find, settings

from geocompose.testing import compositions
from geocompose.verification import verify


def uses_so2(blueprint: dict) -> bool:
    tp = blueprint["interactions"][0].get("tensor_product")
    return isinstance(tp, dict) and tp.get("implementation") == "so2"


@pytest.mark.parametrize("name", ["nequip", "mace"])
def test_a_drawn_so2_composition_verifies(name):
    blueprint = find(
        compositions(interactions=[name], max_interactions=1),
        uses_so2,
        settings=settings(max_examples=200, database=None, suppress_health_check=list(HealthCheck)),
    )
    report = verify(blueprint, samples=1, seed=3)
    assert report.passed, f"{blueprint}\n{report.text()}"
    assert report.claim == "O(3)"
    assert report.check("rotation").verdict.value == "pass"
