"""One registry for every knob kind.

An entry is a params model (pydantic, ``extra="forbid"``), a builder (the class that
makes the module) and typed metadata. Every kind follows one protocol: the builder's
classmethod ``signature(params, upstream, ctx)`` is the typing rule (run before any
weights exist) and ``builder(params, upstream, ctx)`` makes the module. Built-in blocks
and user blocks register the same way, with :func:`register`::

    @register(Kind.INTERACTION, family=Family.INVARIANT, body_order=2, group=Group.O3)
    class SchNetInteraction(Block[SchNetParams]): ...

The knob's name is written once, in the params model's ``type: Literal["schnet"]``.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from geocompose.registry.kinds import Family, Group, Kind
from geocompose.types.bounds import refuse_non_number

__all__ = [
    "FIELD_INPUT_ERROR",
    "REGISTRY",
    "Entry",
    "KnobModel",
    "Registry",
    "RegistryError",
    "register",
]


class KnobModel(BaseModel):
    """Base of every knob's params: unknown keys refused, values immutable, and numbers
    strict: no YAML boolean read as a number (pydantic's lax mode takes `true` as 1)
    and no quoted string read as one (`cutoff: "5.0"` is refused, not coerced)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data):
        # A model validator, because a field validator on "*" would also wrap the
        # `type` discriminator, which pydantic forbids. The error names its field in
        # ctx, so the blueprint layer locates it at that key (FIELD_INPUT_ERROR).
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if field is None:
                    continue
                try:
                    refuse_non_number(field.annotation, value)
                except ValueError as err:
                    raise PydanticCustomError(
                        FIELD_INPUT_ERROR, "{message}", {"field": name, "message": str(err)}
                    ) from None
        return data


FIELD_INPUT_ERROR = "knob_field_input"
"""pydantic error type of a refused field input; ``ctx["field"]`` names the field."""


P = TypeVar("P", bound=KnobModel)


class RegistryError(Exception):
    """A mistake in *registering* a knob (a programming error, raised at import)."""


@dataclass(frozen=True)
class Entry:
    """One registered knob choice.

    Args:
        name: the YAML ``type`` value, read from the params model's Literal.
        kind: which pipeline slot it fills.
        params: the pydantic params model.
        builder: the class that builds the module from params.
        family: the survey family (interactions) or ``component``.
        group: the group it guarantees when its inputs transform correctly.
        body_order: geometric body order of its scalarisation (interactions).
        smooth: envelopes and graph builders: whether it goes to zero smoothly at the cutoff;
            strategies: whether outputs stay continuous through degenerate frames.
        periodic: graph builders: whether it handles periodic cells; other blocks: False
            when they cannot be periodic (e.g. they read absolute coordinates).
        derivative: readouts: computed by autograd from another output (forces, stress).
        exact: strategies: whether the symmetry they give is exact or approximate.
        frames: strategies: whether they build frames from the geometry (the verifier
            then also samples structures whose frames are degenerate).
    """

    name: str
    kind: Kind
    params: type[KnobModel]
    builder: type
    family: Family
    group: Group
    body_order: int | None = None
    smooth: bool | None = None
    periodic: bool | None = None
    derivative: bool = False
    exact: bool | None = None
    frames: bool = False

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.builder) or ""

    @property
    def source(self) -> str:
        """``file:line`` of the builder, as catalogue's ``find`` gives."""
        try:
            file = inspect.getsourcefile(self.builder)
            _, line = inspect.getsourcelines(self.builder)
        except (OSError, TypeError):
            return "<unknown>"
        return f"{file}:{line}"


def knob_name(params: type[KnobModel]) -> str:
    """The single Literal value of a params model's ``type`` field."""
    field = params.model_fields.get("type")
    args = typing.get_args(field.annotation) if field is not None else ()
    if field is None or typing.get_origin(field.annotation) is not Literal or len(args) != 1:
        raise RegistryError(
            f"{params.__name__} needs a field `type: Literal['<name>'] = '<name>'` naming the knob"
        )
    return args[0]


class Registry:
    """Every registered knob, by kind and name."""

    def __init__(self) -> None:
        self._entries: dict[Kind, dict[str, Entry]] = {kind: {} for kind in Kind}
        self.version = 0  # bumped on every registration, so derived schemas know to rebuild

    def add(self, entry: Entry) -> Entry:
        existing = self._entries[entry.kind].get(entry.name)
        if existing is not None and existing.builder is not entry.builder:
            raise RegistryError(
                f"{entry.kind.value} '{entry.name}' is already registered by "
                f"{existing.builder.__qualname__} ({existing.source}); a change in numerics "
                f"gets a new name, e.g. '{entry.name}.v2'"
            )
        self._entries[entry.kind][entry.name] = entry
        self.version += 1
        return entry

    def remove(self, kind: Kind, name: str) -> None:
        """Unregister (used by tests that plant temporary blocks)."""
        self._entries[kind].pop(name, None)
        self.version += 1

    def get(self, kind: Kind, name: str) -> Entry:
        try:
            return self._entries[kind][name]
        except KeyError:
            names = self.names(kind)
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" — did you mean '{close[0]}'?" if close else ""
            raise KeyError(
                f"no {kind.value} named '{name}'{hint} (choose from: {', '.join(names)})"
            ) from None

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: Kind | None = None) -> Iterator[Entry]:
        kinds = [kind] if kind is not None else list(Kind)
        for k in kinds:
            yield from (self._entries[k][name] for name in sorted(self._entries[k]))

    def for_params(self, params: KnobModel, kind: Kind) -> Entry:
        return self.get(kind, params.type)  # type: ignore[attr-defined]


REGISTRY = Registry()


def register(
    kind: Kind,
    *,
    family: Family = Family.COMPONENT,
    group: Group = Group.O3,
    body_order: int | None = None,
    smooth: bool | None = None,
    periodic: bool | None = None,
    derivative: bool = False,
    exact: bool | None = None,
    frames: bool = False,
    registry: Registry | None = None,
) -> Callable[[type], type]:
    """Class decorator that registers a knob of any kind; reads the params model from
    ``Params``.

    The decorated class must name its params model in a class attribute ``Params`` and
    define the typing rule ``signature(params, upstream, ctx)`` as a classmethod; it is
    built as ``builder(params, upstream, ctx)``. The entry is stored on the class as
    ``entry``, so every built module knows its registry entry.
    """

    def decorate(builder: type) -> type:
        params = getattr(builder, "Params", None)
        if not (isinstance(params, type) and issubclass(params, KnobModel)):
            raise RegistryError(f"{builder.__qualname__} needs `Params = <a KnobModel subclass>`")
        name = knob_name(params)
        if kind is Kind.INTERACTION and "repeat" not in params.model_fields:
            raise RegistryError(
                f"{params.__name__} is an interaction's params and needs `repeat`: derive it "
                "from geocompose.nn.interaction.base.InteractionParams"
            )
        if kind is Kind.GRAPH and "cutoff" not in params.model_fields:
            raise RegistryError(
                f"{params.__name__} is a graph builder's params and needs `cutoff` (bases and "
                "envelopes are scaled to it): derive it from geocompose.nn.graph.base.GraphParams"
            )
        if not callable(getattr(builder, "signature", None)):
            raise RegistryError(
                f"{builder.__qualname__} needs a classmethod `signature(params, upstream, ctx)`"
            )
        entry = Entry(
            name=name,
            kind=kind,
            params=params,
            builder=builder,
            family=family,
            group=group,
            body_order=body_order,
            smooth=smooth,
            periodic=periodic,
            derivative=derivative,
            exact=exact,
            frames=frames,
        )
        (registry or REGISTRY).add(entry)
        builder.entry = entry
        return builder

    return decorate
