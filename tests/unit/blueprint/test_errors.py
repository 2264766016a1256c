"""translate_validation_error: pydantic errors become located one-line blueprint errors."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, PositiveInt, ValidationError

from geocompose.blueprint.errors import did_you_mean, translate_validation_error
from geocompose.blueprint.loader import load_yaml
from geocompose.errors import BlueprintError, BlueprintErrors, Location


class Knobs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchNetParams(Knobs):
    type: Literal["schnet"] = "schnet"
    hidden: PositiveInt = 128
    cutoff: FiniteFloat = 5.0


class PaiNNParams(Knobs):
    type: Literal["painn"]
    features: PositiveInt
    pooling: Literal["sum", "mean"] = "sum"


class RadiusGraph(Knobs):
    builder: Literal["radius"] = "radius"
    radius: PositiveInt = 5  # a key spelled like the tag value: must not confuse paths


Interaction = Annotated[SchNetParams | PaiNNParams, Field(discriminator="type")]
Graph = Annotated[RadiusGraph, Field(discriminator="builder")]


class Blueprint(Knobs):
    name: str
    interactions: list[Interaction]
    graph: Graph | None = None
    seed: int | str = 0


def errors_for(text: str, **kwargs) -> list[BlueprintError]:
    data, where = load_yaml("bp.yaml", text=text)
    with pytest.raises(ValidationError) as info:
        Blueprint.model_validate(data)
    translated = translate_validation_error(info.value, data, where, **kwargs)
    assert isinstance(translated, BlueprintErrors)
    return translated.errors


def only(text: str, **kwargs) -> BlueprintError:
    errors = errors_for(text, **kwargs)
    assert len(errors) == 1, [e.render() for e in errors]
    return errors[0]


def test_unknown_key_points_at_the_key_with_suggestion():
    err = only("name: x\ninteractions:\n  - type: schnet\n    hiden: 64\n", model=Blueprint)
    assert err.knob == "interactions[0].hiden"
    assert err.location == Location("bp.yaml", 4, 5)
    assert "unknown key 'hiden'" in err.message
    assert "did you mean 'hidden'?" in err.message
    assert "allowed keys: cutoff, hidden, type" in err.message


def test_unknown_key_without_model_uses_suggestions_callback():
    seen = []

    def suggestions(path, kind):
        seen.append((path, kind))
        return ["name", "interactions", "graph", "seed"]

    err = only("name: x\ninteractions: []\ngrahp: {}\n", suggestions=suggestions)
    assert seen == [((), "extra_forbidden")]
    assert err.knob == "grahp" and err.location == Location("bp.yaml", 3, 1)
    assert "did you mean 'graph'?" in err.message


def test_unknown_type_tag_lists_expected_tags():
    err = only("name: x\ninteractions:\n  - {type: schnett, hidden: 3}\n")
    assert err.knob == "interactions[0].type"
    assert err.location == Location("bp.yaml", 3, 12)  # the tag's value
    assert "unknown type 'schnett'" in err.message
    assert "did you mean 'schnet'?" in err.message
    assert "expected one of: 'painn', 'schnet'" in err.message


def test_missing_type_key():
    err = only("name: x\ninteractions:\n  - {hidden: 3}\n", model=Blueprint)
    assert err.knob == "interactions[0]"
    assert err.location == Location("bp.yaml", 3, 5)
    assert "needs a 'type' key" in err.message and "'painn', 'schnet'" in err.message


def test_missing_key_points_at_parent_mapping():
    err = only("name: x\ninteractions:\n  - type: painn\n    pooling: sum\n")
    # the discriminator segment ('painn') pydantic inserts is dropped
    assert err.knob == "interactions[0].features"
    assert err.location == Location("bp.yaml", 3, 5)
    assert "missing required key 'features' from interactions[0]" in err.message


def test_missing_top_level_key():
    err = only("# header\ninteractions: []\n")
    assert err.knob == "name" and "at the top level" in err.message
    assert err.location == Location("bp.yaml", 2, 1)


def test_negative_number():
    err = only("name: x\ninteractions:\n  - type: schnet\n    hidden: -1\n")
    assert err.knob == "interactions[0].hidden"
    assert err.location == Location("bp.yaml", 4, 13)
    assert err.message == "must be > 0; got -1"


def test_nan_number():
    err = only("name: x\ninteractions:\n  - {type: schnet, cutoff: .nan}\n")
    assert err.knob == "interactions[0].cutoff"
    assert err.location == Location("bp.yaml", 3, 28)
    assert err.message == "must be a finite number; got nan"


@pytest.mark.parametrize(
    ("text", "knob", "message"),
    [
        ("name: [a]\ninteractions: []\n", "name", "must be a string; got a list"),
        ("name: x\ninteractions: {}\n", "interactions", "must be a list; got a mapping"),
        (
            "name: x\ninteractions:\n  - {type: painn, features: lots}\n",
            "interactions[0].features",
            "must be an integer; got 'lots'",
        ),
        (
            "name: x\ninteractions: []\nseed: [1]\n",
            "seed",
            "must be an integer or a string; got a list",
        ),
    ],
)
def test_wrong_type(text, knob, message):
    err = only(text)
    assert err.knob == knob
    assert err.message == message


def test_literal_with_suggestion():
    err = only("name: x\ninteractions:\n  - {type: painn, features: 8, pooling: summ}\n")
    assert err.knob == "interactions[0].pooling"
    assert err.message == "must be one of 'mean', 'sum'; got 'summ'; did you mean 'sum'?"


def test_tag_value_equal_to_a_key_is_still_dropped():
    err = only("name: x\ninteractions: []\ngraph: {builder: radius, radius: 0}\n")
    assert err.knob == "graph.radius"
    assert err.location == Location("bp.yaml", 3, 34)


def test_several_errors_in_file_order_one_line_each():
    text = (
        "name: 3\n"
        "interactions:\n"
        "  - {type: painn, features: 0}\n"
        "  - {type: schnet, hidden: -5, extra: 1}\n"
        "seed: 1.5\n"
    )
    errors = errors_for(text)
    lines = [(e.location.line, e.location.column) for e in errors]
    assert lines == sorted(lines)
    assert [e.knob for e in errors] == [
        "name",
        "interactions[0].features",
        "interactions[1].hidden",
        "interactions[1].extra",
        "seed",
    ]
    data, where = load_yaml("bp.yaml", text=text)
    with pytest.raises(ValidationError) as info:
        Blueprint.model_validate(data)
    rendered = translate_validation_error(info.value, data, where).render()
    assert len(rendered.splitlines()) == len(errors)
    assert all(line.startswith("bp.yaml:") for line in rendered.splitlines())
    for raw in ("Input should", "validation error", "errors.pydantic.dev", "Traceback"):
        assert raw not in rendered


def test_errors_raise_as_one_exception():
    data, where = load_yaml("bp.yaml", text="name: x\ninteractions: 1\n")
    with pytest.raises(ValidationError) as info:
        Blueprint.model_validate(data)
    expected = r"^bp\.yaml:2:15: interactions: must be a list; got 1$"
    with pytest.raises(BlueprintError, match=expected):
        raise translate_validation_error(info.value, data, where)


def test_did_you_mean():
    assert did_you_mean("SchNet", ["schnet", "painn"]) == "did you mean 'schnet'?"
    assert did_you_mean("pain", ["schnet", "painn"]) == "did you mean 'painn'?"
    assert did_you_mean("zzzz", ["schnet", "painn"]) == ""
    assert did_you_mean(3, ["schnet"]) == ""
