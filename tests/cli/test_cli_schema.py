"""``geocompose schema``: the JSON Schema of blueprints, derived from the registry."""

from __future__ import annotations

import json

from geocompose.blueprint import json_schema
from geocompose.cli.main import main
from geocompose.registry import REGISTRY, Kind


def test_prints_the_blueprint_json_schema(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(json_schema()))
    assert printed["title"] == "geocompose blueprint"
    assert {"name", "graph", "embedding", "interactions", "readout"} <= set(printed["properties"])


def test_every_registered_interaction_is_a_valid_type(capsys):
    assert main(["schema", "--indent", "0"]) == 0
    text = capsys.readouterr().out
    for name in REGISTRY.names(Kind.INTERACTION):
        assert f'"const": "{name}"' in text.replace('"const":"', '"const": "')
