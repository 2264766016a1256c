"""load_yaml: plain data, exact locations, and located refusals."""

from __future__ import annotations

import math
import time

import pytest

from geocompose.blueprint.loader import MAX_ALIASES, MAX_DEPTH, load_yaml
from geocompose.blueprint.sourcemap import SourceMap, format_knob
from geocompose.errors import BlueprintError, GeocomposeError, Location

BLUEPRINT = """\
# a comment line
name: mace-small
graph:
  builder: radius
  cutoff: 5.0
interactions:
  - type: mace
    correlation: 3
  - {type: schnet, hidden: 64, sizes: [8, 16]}
readout:
  energy: {type: sum}
"""


def load(text: str, name: str = "bp.yaml"):
    return load_yaml(name, text=text)


def refusal(text: str, name: str = "bp.yaml") -> BlueprintError:
    with pytest.raises(BlueprintError) as info:
        load(text, name)
    return info.value


def test_plain_data():
    data, _ = load(BLUEPRINT)
    assert data == {
        "name": "mace-small",
        "graph": {"builder": "radius", "cutoff": 5.0},
        "interactions": [
            {"type": "mace", "correlation": 3},
            {"type": "schnet", "hidden": 64, "sizes": [8, 16]},
        ],
        "readout": {"energy": {"type": "sum"}},
    }
    assert type(data["graph"]["cutoff"]) is float
    assert type(data["interactions"][0]["correlation"]) is int


@pytest.mark.parametrize(
    ("path", "line", "column"),
    [
        ((), 2, 1),  # the root mapping starts at its first key, after the comment
        (("name",), 2, 7),
        (("graph",), 4, 3),
        (("graph", "cutoff"), 5, 11),
        (("interactions",), 7, 3),
        (("interactions", 0), 7, 5),
        (("interactions", 0, "correlation"), 8, 18),
        (("interactions", 1), 9, 5),
        (("interactions", 1, "hidden"), 9, 28),
        (("interactions", 1, "sizes", 1), 9, 43),
        (("readout", "energy", "type"), 11, 18),
    ],
)
def test_value_locations(path, line, column):
    _, where = load(BLUEPRINT)
    assert where.locate(path) == Location("bp.yaml", line, column)


def test_key_locations_point_at_the_key():
    _, where = load(BLUEPRINT)
    assert where.key_location(("graph", "cutoff")) == Location("bp.yaml", 5, 3)
    assert where.key_location(("interactions", 1, "hidden")) == Location("bp.yaml", 9, 20)
    # list items have no key: fall back to the value
    assert where.key_location(("interactions", 1)) == where.locate(("interactions", 1))


def test_missing_path_falls_back_to_nearest_ancestor():
    _, where = load(BLUEPRINT)
    assert where.locate(("graph", "envelope", "p")) == where.locate(("graph",))
    assert where.locate(("interactions", 7, "x")) == where.locate(("interactions",))
    assert where.locate(("nope",)) == where.locate(())
    assert SourceMap("x.yaml").locate(("a",)) == Location("x.yaml", 1, 1)


def test_format_knob():
    assert format_knob(("interactions", 1, "tensor_product", "l_max")) == (
        "interactions[1].tensor_product.l_max"
    )
    assert format_knob(()) == ""
    assert format_knob(("species", "C.sp2")) == 'species["C.sp2"]'


def test_nan_and_inf_stay_floats():
    data, _ = load("a: .nan\nb: -.inf\nc: 1e-3\nd: 2.5E5\ne: 2024-01-01\n")
    assert math.isnan(data["a"])
    assert data["b"] == -math.inf
    # YAML 1.2 exponent floats, which PyYAML's 1.1 rules would leave as strings
    assert data["c"] == pytest.approx(1e-3) and data["d"] == 2.5e5
    assert data["e"] == "2024-01-01"  # dates stay text


def test_merge_keys_and_small_aliases():
    data, where = load("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\ne: *b\n")
    assert data["d"] == {"x": 1, "y": 3}
    assert data["e"] == {"x": 1, "y": 2}
    data["e"]["x"] = 9  # aliases expand to independent copies
    assert data["base"]["x"] == 1
    assert where.locate(("d", "y")).line == 4


def test_alias_bomb_refused_quickly():
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    err = refusal("\n".join(levels) + "\n")
    assert time.perf_counter() - start < 1.0
    assert "alias" in err.message
    # 9 + 81 + 729 + 6561 stay under budget; the first *d on line 5 pushes it over
    assert err.location == Location("bp.yaml", 5, 8)


def test_too_many_aliases_refused():
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    err = refusal(text)
    assert f"more than {MAX_ALIASES} aliases" in err.message
    assert err.location.line == 2


def test_recursive_alias_refused():
    err = refusal("a: &a [1, *a]\n")
    assert "recursive" in err.message
    assert err.location == Location("bp.yaml", 1, 11)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deep_nesting_refused(depth):
    start = time.perf_counter()
    err = refusal("a: " + "[" * depth + "]" * depth + "\n")
    assert time.perf_counter() - start < 2.0
    assert f"deeper than {MAX_DEPTH}" in err.message
    # the root mapping is level 1, so the 64th '[' (column 67) is level 65
    assert err.location == Location("bp.yaml", 1, 3 + MAX_DEPTH)


def test_nesting_at_the_limit_is_fine():
    depth = MAX_DEPTH - 1
    data, _ = load("a: " + "[" * depth + "]" * depth + "\n")
    assert isinstance(data["a"], list)


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("name: x\nexploit: !!python/object/apply:os.system ['echo hi']\n", "!!python/object"),
        ("name: x\nexploit: !!python/name:os.system\n", "!!python/name"),
        ("name: x\nthing: !custom 3\n", "!custom"),
        ("name: x\nthing: !!set {a, b}\n", "!!set"),
    ],
)
def test_tags_refused_at_their_location(text, tag):
    err = refusal(text)
    assert "tags are not allowed" in err.message and tag in err.message
    key = text.splitlines()[1].split(":")[0]
    assert err.knob == key
    assert err.location == Location("bp.yaml", 2, len(key) + 3)  # the tag, after "key: "


def test_duplicate_key_refused():
    err = refusal("name: x\ngraph:\n  cutoff: 5.0\n  cutoff: 6.0\n")
    assert "duplicate key 'cutoff'" in err.message and "line 3" in err.message
    assert err.location == Location("bp.yaml", 4, 3)
    assert err.knob == "graph.cutoff"


@pytest.mark.parametrize(
    ("text", "kind"), [("1: a\n", "number"), ("on: a\n", "boolean"), ("[a]: 1\n", "list")]
)
def test_non_string_keys_refused(text, kind):
    err = refusal("name: x\n" + text)
    assert "keys must be strings" in err.message and kind in err.message
    assert err.location == Location("bp.yaml", 2, 1)


@pytest.mark.parametrize(
    ("text", "line", "column", "problem"),
    [
        ("name: x\ngraph: [1, 2\ncutoff: 3\n", 3, 7, "expected ',' or ']'"),
        ("name: x\n  graph: 2\n", 2, 8, "mapping values are not allowed"),
        ("name: x\nb: *nope\n", 2, 4, "undefined alias"),
        ("a: 1\n---\nb: 2\n", 2, 1, "single document"),
        ("name: \x07\n", 1, 7, "special characters"),
    ],
)
def test_malformed_yaml_located(text, line, column, problem):
    err = refusal(text)
    assert err.message.startswith("malformed YAML") and problem in err.message
    assert err.location == Location("bp.yaml", line, column)
    assert "\n" not in err.render()


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(text):
    err = refusal(text)
    assert "empty file" in err.message and "mapping" in err.message
    assert err.location == Location("bp.yaml", 1, 1)


@pytest.mark.parametrize(
    ("text", "got"),
    [("- a\n- b\n", "a list"), ("hello\n", "a string"), ("~\n", "null"), ("3\n", "a number")],
)
def test_top_level_must_be_a_mapping(text, got):
    err = refusal(text)
    assert "must be a mapping" in err.message and got in err.message
    assert err.location.line == 1


def test_reads_files(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("name: ok\n", encoding="utf-8")
    data, where = load_yaml(path)
    assert data == {"name": "ok"}
    assert where.locate(("name",)) == Location(str(path), 1, 7)


def test_unreadable_files(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(BlueprintError, match="no such blueprint file.*missing.yaml"):
        load_yaml(missing)
    with pytest.raises(BlueprintError, match="is a directory"):
        load_yaml(tmp_path)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: x\nspecies: [H, \xc5]\n".encode("latin-1"))
    with pytest.raises(BlueprintError, match="not UTF-8") as info:
        load_yaml(latin1)
    assert info.value.location == Location(str(latin1), 2, 14)


def test_errors_are_geocompose_errors():
    # the CLI catches GeocomposeError only; anything else would print a traceback
    for text in ["", "a: [", "a: !x 1", "- 1\n"]:
        with pytest.raises(GeocomposeError):
            load(text)
