"""Typing rules: what a block reads and writes, decided before any weights exist."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from geocompose.errors import did_you_mean
from geocompose.types.group import Group
from geocompose.types.irreps import FieldType

FieldTypes = Mapping[str, FieldType]
"""The fields available at some point of a model, with their declared types."""


@dataclass(frozen=True)
class Signature:
    """A block's contract.

    Args:
        reads: fields the block consumes, with the types it accepts them as.
        writes: fields the block produces (or overwrites), with their types.
        guarantee: the group the block is equivariant under when its reads are.
        notes: remarks shown in the trace.
        extensive: False when the block couples every atom of a structure (a
            per-structure normalisation, a mean over atoms, pairs at any distance): the
            model's energy is then no longer a sum of contributions from within the
            cutoff of each atom, so the verifier measures locality and extensivity
            instead of holding the model to them.
        exact: False when the guarantee is approximate (a stochastic symmetry
            strategy): the verifier then measures it instead of holding it to a
            tight tolerance.
    """

    reads: Mapping[str, FieldType]
    writes: Mapping[str, FieldType]
    guarantee: Group
    notes: tuple[str, ...] = field(default=())
    extensive: bool = True
    exact: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", dict(self.reads))
        object.__setattr__(self, "writes", dict(self.writes))


@dataclass(frozen=True)
class TypeRefusal:
    """A typed 'no': the block cannot consume what upstream provides.

    Args:
        message: what is wrong, naming the field and both types.
        hint: what would be valid instead.
    """

    message: str
    hint: str = ""

    def render(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


def require(upstream: FieldTypes, name: str, reader: str) -> FieldType | TypeRefusal:
    """Look up a field a block needs, or refuse naming the reader."""
    if name not in upstream:
        available = ", ".join(sorted(upstream)) or "nothing"
        suggestion = did_you_mean(name, sorted(upstream))
        return TypeRefusal(
            f"{reader} reads `{name}`, which no earlier block writes",
            f"{suggestion + ' ' if suggestion else ''}fields available here: {available}",
        )
    return upstream[name]


def require_all(upstream: FieldTypes, names, reader: str) -> dict[str, FieldType] | TypeRefusal:
    """Look up several fields; the first missing one refuses."""
    reads: dict[str, FieldType] = {}
    for name in names:
        found = require(upstream, name, reader)
        if isinstance(found, TypeRefusal):
            return found
        reads[name] = found
    return reads


def require_scalar(
    reads: dict[str, FieldType], name: str, reader: str, hint: str
) -> TypeRefusal | None:
    """Refuse (naming both types) when ``reads[name]`` holds anything but 0e channels."""
    if reads[name].is_scalar:
        return None
    return TypeRefusal(
        f"{reader} reads {name} as 0e only; upstream gives {reads[name].irreps}", hint
    )
