"""``geocompose knobs``: registry listing, one knob in full, and the generated docs/knobs.md."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field, PositiveInt

from geocompose.cli.knobs import SLOTS, builtin_entries, render_knobs_markdown
from geocompose.cli.main import main
from geocompose.cli.params import param_rows
from geocompose.nn.block import Block
from geocompose.registry import REGISTRY, Kind, KnobModel, register

REPO = Path(__file__).resolve().parents[2]
KNOBS_MD = REPO / "docs" / "knobs.md"
REGENERATE = "geocompose knobs --markdown > docs/knobs.md"


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # keep rich from folding names in tables


# ------------------------------------------------------------- the generated page


def test_docs_knobs_md_is_up_to_date():
    expected = render_knobs_markdown()
    actual = KNOBS_MD.read_text(encoding="utf-8") if KNOBS_MD.exists() else ""
    if actual != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    actual.splitlines(True), expected.splitlines(True), "docs/knobs.md", "registry"
                )
            )[:60]
        )
        pytest.fail(f"docs/knobs.md is stale; regenerate it with `{REGENERATE}`\n{diff}")


def test_markdown_command_prints_exactly_the_page(capsys):
    assert main(["knobs", "--markdown"]) == 0
    assert capsys.readouterr().out == render_knobs_markdown()


def test_page_has_every_builtin_knob_and_the_blueprint_layout():
    page = render_knobs_markdown()
    assert "## Blueprint layout" in page
    for entry in builtin_entries():
        assert f"### `{entry.name}`" in page
        assert f'<a id="{entry.kind.value}-{entry.name.replace(".", "")}"></a>' in page
    assert "/work/" not in page and ".py:" not in page  # no absolute paths, no line numbers


def test_every_kind_has_a_blueprint_slot():
    assert set(SLOTS) == set(Kind)


# ------------------------------------------------------------------ listing


def test_lists_every_registered_knob_by_kind(capsys):
    assert main(["knobs"]) == 0
    out = capsys.readouterr().out
    for kind in Kind:
        if REGISTRY.names(kind):
            assert f"{kind.value}  (blueprint: {SLOTS[kind]})" in out
    for entry in REGISTRY.entries():
        assert f" {entry.name} " in out


def test_kind_filter(capsys):
    assert main(["knobs", "--kind", "radial"]) == 0
    out = capsys.readouterr().out
    assert " gaussian " in out and " bessel " in out
    assert " schnet " not in out and "interaction  (blueprint" not in out
    assert "num: int = 50  (0 < x <= 4096)" in out  # params with type, default, constraint


def test_unknown_kind_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["knobs", "--kind", "interactions"])
    assert exit_.value.code == 2
    assert "invalid choice: 'interactions'" in capsys.readouterr().err


# ------------------------------------------------------------------ one knob


def test_one_knob_in_full(capsys):
    assert main(["knobs", "schnet"]) == 0
    out = capsys.readouterr().out
    entry = REGISTRY.get(Kind.INTERACTION, "schnet")
    assert "interaction 'schnet'  (SchNetInteraction)" in out
    assert f"defined at {entry.source}" in out
    assert entry.source.endswith(".py:" + entry.source.rsplit(":", 1)[1])
    assert entry.doc.splitlines()[0] in out
    assert "family invariant; group O(3); body order 2" in out
    assert "chosen with: interactions[]: {type: schnet}" in out
    assert "filters" in out and "128" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["shnet"], "no knob named 'shnet'; did you mean 'schnet'?"),
        (["schnet", "--kind", "radial"], "no knob named 'schnet' of kind radial"),
        (["zzzzzz"], "no knob named 'zzzzzz' (`geocompose knobs` lists them all)"),
    ],
)
def test_unknown_name_exits_2_with_suggestion(capsys, argv, message):
    assert main(["knobs", *argv]) == 2
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err
    assert out == ""


# ------------------------------------------------------------------ user blocks


class PlantedParams(KnobModel):
    type: Literal["planted_knob_test"] = "planted_knob_test"
    width: PositiveInt = 4


@pytest.fixture
def planted():
    """A user block, registered for one test only."""

    class PlantedReadout(Block):
        """A readout planted by the CLI tests."""

        Params = PlantedParams

    register(Kind.READOUT)(PlantedReadout)
    yield PlantedReadout
    REGISTRY.remove(Kind.READOUT, "planted_knob_test")


def test_user_blocks_are_listed_and_shown_but_not_in_the_docs(planted, capsys):
    assert main(["knobs", "--kind", "readout"]) == 0
    assert " planted_knob_test " in capsys.readouterr().out
    assert main(["knobs", "planted_knob_test"]) == 0
    out = capsys.readouterr().out
    assert "A readout planted by the CLI tests." in out and "test_cli_knobs.py:" in out
    assert "planted_knob_test" not in render_knobs_markdown()


# ------------------------------------------------------------------ params as rows


class Inner(KnobModel):
    l_max: int | None = Field(default=None, ge=0, le=8)
    mode: Literal["uvu", "uvw"] = "uvu"


class Sample(KnobModel):
    type: Literal["sample"] = "sample"
    cutoff: float = Field(gt=0, description="radius in Å")
    hidden: list[PositiveInt] = Field(default_factory=lambda: [64, 32])
    width: float | None = Field(default=None, gt=0)
    name: str = Field(default="", pattern=r"^[a-z]*$")
    flag: bool = False
    inner: Inner = Inner()


def test_param_rows_read_types_defaults_and_constraints():
    rows = {r.name: r for r in param_rows(Sample)}
    assert "type" not in rows
    assert (rows["cutoff"].type, rows["cutoff"].default) == ("float", "required")
    assert rows["cutoff"].constraints == "> 0" and rows["cutoff"].description == "radius in Å"
    assert (rows["hidden"].type, rows["hidden"].default) == ("list[int]", "[64, 32]")
    assert rows["hidden"].constraints == "each > 0"
    assert (rows["width"].type, rows["width"].default, rows["width"].constraints) == (
        "float | null",
        "null",
        "> 0",
    )
    assert rows["name"].default == '""' and rows["name"].constraints == "matches `^[a-z]*$`"
    assert (rows["flag"].type, rows["flag"].default) == ("bool", "false")
    assert rows["inner"].default == "{l_max: null, mode: uvu}"
    assert rows["inner.l_max"].constraints == "0 <= x <= 8"
    assert rows["inner.mode"].type == "'uvu' | 'uvw'"
