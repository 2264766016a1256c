"""Blueprints: YAML with source locations → pydantic models derived from the registry."""

from geocompose.blueprint.document import (
    LoadedBlueprint,
    parse_knob,
    read_blueprint,
    validate_blueprint,
)
from geocompose.blueprint.loader import load_yaml
from geocompose.blueprint.schema import build_schema, json_schema

__all__ = [
    "LoadedBlueprint",
    "build_schema",
    "json_schema",
    "load_yaml",
    "parse_knob",
    "read_blueprint",
    "validate_blueprint",
]
