"""A knob of any kind is one new file, and gets its property tests for free.

The throwaway knobs in ``new_knobs.py`` are registered here exactly as user code
registers them. The composition strategy must then draw each one without being told
about it, the drawn models must verify, and a planted symmetry-breaking knob of each
kind must be caught by the verifier with no test code written for it.
"""

from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, find, given, settings

from geocompose.registry import REGISTRY, Family, Kind, register
from geocompose.testing import compositions
from geocompose.verification import Verdict, verify
import new_knobs as K

CLEAN = {
    Kind.GRAPH: (K.ShellGraph, {"periodic": True, "smooth": False}),
    Kind.NODE_EMBEDDING: (K.DoubledOneHot, {}),
    Kind.RADIAL: (K.PowersRadial, {}),
    Kind.ENVELOPE: (K.QuarticEnvelope, {"smooth": True}),
    Kind.ANGULAR: (K.Directions, {}),
    Kind.INTERACTION: (K.MeanField, {"family": Family.INVARIANT, "body_order": 2}),
    Kind.READOUT: (K.SquaresReadout, {}),
    Kind.STRATEGY: (K.InversionAverage, {"exact": True}),
}

# kind → (builder, metadata, other slots pinned so the defect is reachable, check that fails)
PLANTED = {
    Kind.GRAPH: (K.NorthGraph, {"periodic": True, "smooth": True}, {}, "rotation"),
    Kind.NODE_EMBEDDING: (K.AtomIndexEmbedding, {}, {}, "permutation"),
    Kind.RADIAL: (K.HeightRadial, {}, {}, "rotation"),
    Kind.ANGULAR: (K.TiltedHarmonics, {}, {Kind.INTERACTION: ["tfn"]}, "rotation"),
    Kind.READOUT: (K.OffsetReadout, {}, {}, "translation"),
    Kind.STRATEGY: (
        K.ClaimOnly,
        {"exact": True},
        {Kind.INTERACTION: ["coordinate_mlp"]},
        "rotation",
    ),
}
PINNED = {Kind.INTERACTION: ["schnet"]}  # a block that reads every invariant edge field


@contextmanager
def registered(knobs):
    """Register (kind, builder, metadata) triples as user code would; unregister after."""
    for kind, builder, meta in knobs:
        register(kind, **meta)(builder)
    try:
        yield
    finally:
        for kind, builder, _ in knobs:
            REGISTRY.remove(kind, builder.entry.name)


@pytest.fixture(scope="module", autouse=True)
def clean_knobs():
    # Planted knobs are registered only inside their own test, so that the clean
    # tests' other slots are never drawn among them.
    with registered([(kind, builder, meta) for kind, (builder, meta) in CLEAN.items()]):
        yield


def slot(blueprint: dict, kind: Kind) -> list[str]:
    """The knob names a blueprint uses at the slot of ``kind``."""
    return {
        Kind.GRAPH: lambda: [blueprint["graph"]["type"]],
        Kind.NODE_EMBEDDING: lambda: [blueprint["embedding"]["node"]["type"]],
        Kind.RADIAL: lambda: [blueprint["embedding"]["radial"]["type"]],
        Kind.ENVELOPE: lambda: [blueprint["embedding"]["envelope"]["type"]],
        Kind.ANGULAR: lambda: [blueprint["embedding"]["angular"]["type"]],
        Kind.INTERACTION: lambda: [i["type"] for i in blueprint["interactions"]],
        Kind.READOUT: lambda: [r["type"] for r in blueprint["readout"].values()],
        Kind.STRATEGY: lambda: [blueprint["symmetry"]["strategy"]["type"]],
    }[kind]()


UNPROMPTED = [Kind.GRAPH, Kind.NODE_EMBEDDING, Kind.RADIAL, Kind.ENVELOPE, Kind.ANGULAR]


@pytest.mark.parametrize("kind", UNPROMPTED + [Kind.INTERACTION, Kind.READOUT], ids=str)
def test_a_new_knob_is_drawn_without_being_named(kind):
    name = CLEAN[kind][0].entry.name
    found = find(
        compositions(max_interactions=1),
        lambda bp: name in slot(bp, kind),
        settings=settings(
            max_examples=400, database=None, suppress_health_check=list(HealthCheck)
        ),
    )
    assert name in slot(found, kind)


@pytest.mark.parametrize("kind", list(CLEAN), ids=str)
def test_a_new_knob_of_every_kind_verifies(kind):
    name = CLEAN[kind][0].entry.name

    @settings(max_examples=1)
    @given(compositions(max_interactions=1, choose={**PINNED, kind: [name]}))
    def check(blueprint):
        assert name in slot(blueprint, kind)
        report = verify(blueprint, samples=1, seed=5)
        assert report.passed, f"{blueprint}\n{report.text()}"

    check()


@pytest.mark.parametrize("kind", list(PLANTED), ids=str)
def test_a_planted_symmetry_breaking_knob_of_every_kind_is_caught(kind):
    builder, meta, pinned, failing = PLANTED[kind]
    with registered([(kind, builder, meta)]):
        name = builder.entry.name

        @settings(max_examples=1)
        @given(compositions(max_interactions=1, choose={**PINNED, **pinned, kind: [name]}))
        def check(blueprint):
            assert name in slot(blueprint, kind)
            report = verify(blueprint, samples=1, seed=5)
            assert report.check(failing).verdict is Verdict.FAIL, report.text()
            assert not report.passed

        check()
