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


def knob_union(kind: Kind, registry: Registry = REGISTRY) -> Any:
    """The type of one knob slot: a union of the registered params, on ``type``."""
    models = [entry.params for entry in registry.entries(kind)]
    if not models:
        raise RuntimeError(f"no {kind.value} is registered; import geocompose.nn first")
    if len(models) == 1:
        return Annotated[models[0], BeforeValidator(_shorthand_type)]
    return Annotated[
        Union[tuple(models)],  # noqa: UP007 - a runtime-built union
        Field(discriminator="type"),
        BeforeValidator(_shorthand_type),
    ]


class AngularSpec(KnobModel):
    """Spherical harmonics of edge directions."""

    l_max: int = Field(ge=0, le=8)


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
        angular=(AngularSpec | None, None),
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
