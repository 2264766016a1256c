"""Fuzzing the user's inputs: every mutation is accepted or refused cleanly, never a crash.

hypothesis mutates the shipped blueprints (a value replaced by junk, a key deleted,
misspelt or added, the text truncated or a character inserted or deleted) and a small
copy of the shipped data file (a token replaced, a line deleted or duplicated, the file
truncated). Each mutant goes through the real command line in-process
(``main(["info", ...])``, ``main(["evaluate", ...])``), and must exit 0 (the mutation
happened to be valid) or 2 with every stderr line located (``file:line:col:`` for a
blueprint, the file and its line, frame or structure for data); never 1 or 3, never a
traceback. Bounded: about a minute in the default run (examples are set below; the
``dev`` hypothesis profile draws more).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geocompose.cli.main import main

REPO = Path(__file__).resolve().parents[2]
BLUEPRINTS = sorted((REPO / "blueprints").glob("*.yaml"))
SAMPLE = REPO / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"
FRAME_LINES = 34  # 32 Cu atoms + count + comment
DATA = "\n".join(SAMPLE.read_text().splitlines()[: 3 * FRAME_LINES]) + "\n"

JUNK = st.sampled_from(
    [
        None,
        True,
        False,
        "NO",
        "",
        "5.0",
        "nope",
        "64x0e + 1000000000000000000x1o",
        -1,
        0,
        2**63,
        10**18,
        500,
        5000,
        1e308,
        1e-300,
        math.nan,
        math.inf,
        [],
        {},
        [1, "a"],
        {"type": "nope"},
    ]
)
SMALL = st.sampled_from([1, 2])  # valid sizes that keep a mutant cheap to build
TEXT_JUNK = st.sampled_from(list(":{}[]-&*!|>'\"#%@`,? \t\n") + ["\x00", "é", "\ufeff"])
DATA_JUNK = st.sampled_from(["Qq", "nan", "1,5", "", "abc", "-1", "1e999", "Cu Cu", "32"])

LOCATED_BLUEPRINT = r"^{file}:\d+:\d+: "
LOCATED_DATA = r"^{file}(:\d+: frame \d+|: structure \d+|: frame \d+|: the file is empty)"

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def assert_clean(code: int, err: str, pattern: str) -> None:
    assert "Traceback" not in err, err
    assert code in (0, 2), f"exit {code}:\n{err}"
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines, "exit 2 with nothing on stderr"
        for line in lines:
            assert re.match(pattern, line), f"not located: {line!r}"


def paths(data: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path in plain YAML data (mapping keys and list indices)."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += paths(value, (*prefix, i))
    return found


def parent_of(data: object, path: tuple):
    for segment in path[:-1]:
        data = data[segment]
    return data


@st.composite
def mutated_blueprint(draw) -> str:
    source = draw(st.sampled_from(BLUEPRINTS)).read_text()
    how = draw(st.sampled_from(["value", "small", "delete", "misspell", "add", "text"]))
    if how == "text":
        position = draw(st.integers(0, len(source)))
        edit = draw(st.sampled_from(["truncate", "insert", "delete"]))
        if edit == "truncate":
            return source[:position]
        if edit == "insert":
            return source[:position] + draw(TEXT_JUNK) + source[position:]
        return source[:position] + source[position + 1 :]
    data = yaml.safe_load(source)
    path = draw(st.sampled_from(paths(data)))
    parent, last = parent_of(data, path), path[-1]
    if how == "value":
        parent[last] = draw(JUNK)
    elif how == "small":
        parent[last] = draw(SMALL)
    elif how == "delete":
        del parent[last]
    elif isinstance(parent, dict):  # misspell or add a key next to an existing one
        name = str(last)
        cut = draw(st.integers(0, max(0, len(name) - 1)))
        new = name[:cut] + name[cut + 1 :] if how == "misspell" else name + "_extra"
        parent[new or "x"] = parent.pop(last) if how == "misspell" else draw(JUNK)
    else:
        parent[last] = draw(JUNK)
    return yaml.safe_dump(data, sort_keys=False)


@FUZZ
@given(text=mutated_blueprint())
def test_mutated_blueprints_are_accepted_or_refused_at_a_location(tmp_path, text):
    path = tmp_path / "mutant.yaml"
    path.write_text(text, encoding="utf-8")
    code, err = run(["info", str(path)])
    assert_clean(code, err, LOCATED_BLUEPRINT.format(file=re.escape(str(path))))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny Cu model trained for one epoch on the three frames the data fuzz mutates."""
    work = tmp_path_factory.mktemp("fuzz_checkpoint")
    (work / "tiny.extxyz").write_text(DATA)
    (work / "tinycu.yaml").write_text(
        "name: tinycu\n"
        "symmetry: {group: O(3), strategy: built_in}\n"
        "graph: {type: radius, cutoff: 3.0}\n"
        "embedding: {species: [Cu], node: {type: learned, features: 4}, "
        "radial: {type: gaussian, num: 4}}\n"
        "interactions: [{type: schnet, filters: 4}]\n"
        "readout: {energy: {type: sum, hidden: [4]}, forces: {type: gradient, of: energy}}\n"
    )
    argv = ["train", str(work / "tinycu.yaml"), str(work / "tiny.extxyz"), "--epochs", "1"]
    code, err = run([*argv, "--out", str(work / "run")])
    assert code == 0, err
    return work / "run" / "best.pt"


@st.composite
def mutated_data(draw) -> str:
    lines = DATA.splitlines()
    how = draw(st.sampled_from(["token", "delete", "duplicate", "truncate", "count"]))
    line = draw(st.integers(0, len(lines) - 1))
    if how == "token":
        words = lines[line].split() or [""]
        words[draw(st.integers(0, len(words) - 1))] = draw(DATA_JUNK)
        lines[line] = " ".join(words)
    elif how == "delete":
        del lines[line]
    elif how == "duplicate":  # an atom line written over the next one: coincident atoms
        frame, offset = divmod(line, FRAME_LINES)
        atom = frame * FRAME_LINES + 2 + min(offset, FRAME_LINES - 4)
        lines[atom + 1] = lines[atom]
    elif how == "truncate":
        lines = lines[:line]
    else:
        lines[FRAME_LINES * draw(st.integers(0, 2))] = draw(st.sampled_from(["31", "33", "x"]))
    return "\n".join(lines) + "\n"


@settings(FUZZ, max_examples=15)
@given(text=mutated_data())
def test_mutated_data_files_are_accepted_or_refused_at_a_location(checkpoint, tmp_path, text):
    path = tmp_path / "mutant.extxyz"
    path.write_text(text, encoding="utf-8")
    code, err = run(["evaluate", str(checkpoint), str(path), "--no-plot"])
    assert_clean(code, err, LOCATED_DATA.format(file=re.escape(str(path))))
