"""Read + validate: a YAML file (or dict) → a ``Blueprint`` that remembers its source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from geocompose.blueprint.errors import translate_validation_error
from geocompose.blueprint.loader import load_yaml
from geocompose.blueprint.schema import build_schema
from geocompose.blueprint.sourcemap import SourceMap
from geocompose.errors import BlueprintError, Location


@dataclass(frozen=True)
class LoadedBlueprint:
    """A validated blueprint plus where each knob was written (when read from a file)."""

    blueprint: Any
    sourcemap: SourceMap | None
    file: str

    def locate(self, knob: str) -> Location | None:
        """``interactions[1].hidden`` → its ``file:line:col`` (None without a file)."""
        if self.sourcemap is None:
            return None
        return self.sourcemap.locate(parse_knob(knob))


def parse_knob(knob: str) -> tuple[str | int, ...]:
    """``interactions[1].hidden`` → ``("interactions", 1, "hidden")``."""
    path: list[str | int] = []
    for part in knob.split("."):
        name, _, rest = part.partition("[")
        if name:
            path.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            path.append(int(index))
            rest = rest.lstrip("[")
    return tuple(path)


def read_blueprint(path: str | Path, *, text: str | None = None) -> LoadedBlueprint:
    """Load a YAML blueprint with located errors (``BlueprintError`` on any problem)."""
    data, sourcemap = load_yaml(path, text=text)
    return validate_blueprint(data, sourcemap, str(path))


def validate_blueprint(data: Any, sourcemap: SourceMap | None, file: str) -> LoadedBlueprint:
    """Validate plain data against the registry's schema."""
    schema = build_schema()
    try:
        blueprint = schema.model_validate(data)
    except pydantic.ValidationError as err:
        raise translate_validation_error(
            err, data, sourcemap or SourceMap(file), model=schema
        ) from None
    return LoadedBlueprint(blueprint, sourcemap, file)


def refuse(loaded: LoadedBlueprint, knob: str, message: str) -> BlueprintError:
    """A located error for a knob of an already-validated blueprint."""
    return BlueprintError(message, loaded.locate(knob), knob)
