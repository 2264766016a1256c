"""The blueprint schema, derived from the registry.

The discriminated unions (one per knob kind) are built from whatever is registered at
call time, so a user's block registered with ``@register`` is a valid ``type:`` in
YAML, in the JSON Schema and in ``geocompose knobs`` with no list kept by hand.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field, create_model, field_validator

from geocompose.registry import REGISTRY, Kind, KnobModel
from geocompose.registry.core import Registry
from geocompose.types.group import Group

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
OUTPUT_PATTERN = r"^[a-z][a-z0-9_]*$"

CHEMICAL_SYMBOLS: frozenset[str] = frozenset(
    __import__("ase.data", fromlist=["chemical_symbols"]).chemical_symbols[1:]
)


def _shorthand_type(value: Any) -> Any:
    """Allow ``strategy: built_in`` as shorthand for ``strategy: {type: built_in}``."""
    return {"type": value} if isinstance(value, str) else value


def _with_default_type(default: str):
    """The shorthand, plus ``type: default`` for a mapping that names none."""

    def fill(value: Any) -> Any:
        value = _shorthand_type(value)
        if isinstance(value, dict) and "type" not in value:
            return {"type": default, **value}
        return value

    return fill


def knob_union(kind: Kind, registry: Registry = REGISTRY, default_type: str | None = None) -> Any:
    """The type of one knob slot: a union of the registered params, on ``type``.

    Args:
        default_type: the knob a mapping without ``type`` chooses (so ``angular:
            {l_max: 2}`` stays valid however many angular bases are registered).
    """
    models = [entry.params for entry in registry.entries(kind)]
    if not models:
        raise RuntimeError(f"no {kind.value} is registered; import geocompose.nn first")
    fill = _shorthand_type if default_type is None else _with_default_type(default_type)
    before = BeforeValidator(fill)
    if len(models) == 1:
        return Annotated[models[0], before]
    return Annotated[
        Union[tuple(models)],  # noqa: UP007 - a runtime-built union
        Field(discriminator="type"),
        before,
    ]


def build_schema(registry: Registry = REGISTRY) -> type[KnobModel]:
    """The ``Blueprint`` model for the registry as it is now (cached per version)."""
    return _build_schema(registry, registry.version)


@functools.lru_cache(maxsize=8)
def _build_schema(registry: Registry, version: int) -> type[KnobModel]:
    Symmetry = create_model(
        "Symmetry",
        __base__=KnobModel,
        __doc__="What the blueprint claims, and how it is obtained.",
        group=(Group, Field(description="claimed group: O(3), SO(3) or none")),
        strategy=(knob_union(Kind.STRATEGY, registry), Field(default={"type": "built_in"})),
        tolerance=(
            float | None,
            Field(
                default=None,
                gt=0.0,
                allow_inf_nan=False,
                description="for approximate strategies: the relative equivariance error the "
                "verifier holds the claim to (otherwise it only reports measured figures)",
            ),
        ),
    )
    Embedding = create_model(
        "Embedding",
        __base__=KnobModel,
        __doc__="Input representation: species, radial basis, envelope, angular basis.",
        species=(list[str], Field(min_length=1, description="chemical symbols, e.g. [H, C, O]")),
        node=(knob_union(Kind.NODE_EMBEDDING, registry), ...),
        radial=(knob_union(Kind.RADIAL, registry), ...),
        envelope=(knob_union(Kind.ENVELOPE, registry), Field(default={"type": "polynomial"})),
        angular=(
            knob_union(Kind.ANGULAR, registry, default_type="spherical_harmonics") | None,
            Field(default=None, description="angular basis of edge directions (none if unset)"),
        ),
        __validators__={"check_species": field_validator("species")(_check_species)},
    )
    Interaction = knob_union(Kind.INTERACTION, registry)
    Readout = knob_union(Kind.READOUT, registry)
    return create_model(
        "Blueprint",
        __base__=KnobModel,
        __doc__="A geometric GNN: graph → embedding → interactions → readout.",
        name=(str, Field(pattern=NAME_PATTERN, description="the file stem of a shipped blueprint")),
        description=(str, ""),
        symmetry=(Symmetry, ...),
        graph=(knob_union(Kind.GRAPH, registry), ...),
        embedding=(Embedding, ...),
        interactions=(list[Interaction], Field(default_factory=list)),
        readout=(dict[Annotated[str, Field(pattern=OUTPUT_PATTERN)], Readout], Field(min_length=1)),
    )


def _check_species(cls, species: list[str]) -> list[str]:
    unknown = [s for s in species if s not in CHEMICAL_SYMBOLS]
    if unknown:
        raise ValueError(f"unknown chemical symbol(s) {unknown}; write e.g. [H, C, N, O, Cu]")
    if len(set(species)) != len(species):
        raise ValueError(f"species are listed twice: {species}")
    return species


def json_schema(registry: Registry = REGISTRY) -> dict[str, Any]:
    """JSON Schema of blueprints, for editors (``geocompose schema``)."""
    schema = build_schema(registry).model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "geocompose blueprint"
    return schema
