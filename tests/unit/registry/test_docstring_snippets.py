"""Every built-in registry entry's docstring carries a YAML snippet, and it compiles.

The snippet (the first ``YAML::`` literal block, or the first ``YAML: ``...```` span)
is put in its slot of a shipped blueprint — graph, embedding, interactions (replacing
them, or after them), readout or symmetry — and must compile in at least one of them.
A misspelt knob, a value out of range or a type that nothing accepts fails in every
one, and the failure lists each base's error. The shipped blueprints provide the
contexts snippets mention (frame averaging for FAENet, an EGNN that moves positions).
"""

from __future__ import annotations

import copy
import inspect
import re
import textwrap
from pathlib import Path

import pytest
import yaml

import geocompose
from geocompose.errors import GeocomposeError
from geocompose.registry import REGISTRY, Kind

BLUEPRINTS = sorted((Path(__file__).parents[3] / "blueprints").glob("*.yaml"))
BUILT_IN = [e for e in REGISTRY.entries() if e.builder.__module__.startswith("geocompose.")]
_INLINE = re.compile(r"YAML:\s*``(.+?)``", re.S)


def snippet(doc: str) -> object:
    """The YAML the docstring shows, parsed; a test failure if there is none."""
    # The literal block: the lines after ``YAML::`` indented deeper than the docstring's
    # text (cleandoc takes that indentation off), up to the next paragraph.
    block = re.search(r"YAML::\s*\n\n((?:[ \t]+.*\n?|\n)+)", inspect.cleandoc(doc))
    if block is not None:
        text = textwrap.dedent(block.group(1))
    else:
        inline = _INLINE.search(doc)
        if inline is None:
            pytest.fail("no YAML snippet in the docstring (STYLE.md section 6)")
        text = " ".join(inline.group(1).split())
    return yaml.safe_load(text)


def placements(kind: Kind, shown: object, base: dict) -> list[dict]:
    """The blueprints made by putting ``shown`` in its slot of ``base``."""
    bp = copy.deepcopy(base)
    if kind is Kind.INTERACTION:
        blocks = shown if isinstance(shown, list) else [shown]
        after = copy.deepcopy(base)
        after["interactions"] = base["interactions"] + blocks
        bp["interactions"] = blocks
        return [bp, after]
    if kind is Kind.STRATEGY:
        if "symmetry" in shown:
            bp["symmetry"] = shown["symmetry"]
        else:
            bp["symmetry"] = {**bp["symmetry"], **shown}
        return [bp]
    if kind is Kind.READOUT:
        bp["readout"] = {**bp["readout"], **shown}
        return [bp]
    if kind is Kind.GRAPH:
        bp["graph"] = shown["graph"]
        return [bp]
    (slot,) = shown  # an embedding knob: node, radial, envelope
    bp["embedding"] = {**bp["embedding"], slot: shown[slot]}
    return [bp]


def first_compiling(kind: Kind, shown: object) -> tuple[object | None, list[str]]:
    """The model of the first shipped blueprint that type-checks with ``shown`` in its
    slot (None if none does), and each base's error before it."""
    errors = []
    for path in BLUEPRINTS:
        base = yaml.safe_load(path.read_text())
        for bp in placements(kind, shown, base):
            try:
                geocompose.check(bp)
            except GeocomposeError as err:
                errors.append(f"{path.name}: {str(err).splitlines()[0]}")
                continue
            return geocompose.compile(bp, seed=0), errors  # type-checked: it must also build
    return None, errors


@pytest.mark.parametrize("entry", BUILT_IN, ids=lambda e: f"{e.kind.value}-{e.name}")
def test_docstring_snippet_compiles(entry):
    shown = snippet(entry.builder.__doc__ or "")
    model, errors = first_compiling(entry.kind, shown)
    if model is None:
        listed = "\n".join(errors)
        pytest.fail(f"the docstring snippet {shown!r} compiles in no shipped blueprint:\n{listed}")
    assert any(isinstance(m, entry.builder) for m in model.modules())


def test_a_broken_snippet_fails_everywhere():
    """Planted defects: a misspelt knob and an unknown type compile in no base."""
    literal = "Block.\n\n    YAML::\n\n        - {type: schnet, filtres: 128}\n"
    for doc in (literal, "YAML: ``{type: schnett, filters: 128}``"):
        shown = snippet(doc)
        model, errors = first_compiling(Kind.INTERACTION, shown)
        assert model is None and len(errors) >= len(BLUEPRINTS)
    assert snippet(literal) == [{"type": "schnet", "filtres": 128}]
    assert first_compiling(Kind.INTERACTION, [{"type": "schnet", "filters": 128}])[0] is not None


def test_every_kind_of_knob_is_covered():
    assert {e.kind for e in BUILT_IN} >= {
        Kind.GRAPH,
        Kind.INTERACTION,
        Kind.READOUT,
        Kind.STRATEGY,
    }
