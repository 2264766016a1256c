"""Draw small, valid params for any registered knob from its pydantic model.

Sizes are kept small (channel counts 1–8, at most 2 repeats) so that drawn
compositions build and verify in well under a second each. A field that lists
``examples`` (pydantic ``Field(examples=...)``) is drawn among them (and its default).
Fields with no rule here keep their default, which every registered params model must
make valid; required fields without examples are left to the caller.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

from e3nn import o3
from hypothesis import strategies as st
from pydantic.fields import FieldInfo

from geocompose.registry.core import KnobModel
from geocompose.types.irreps import parse_irreps

MAX_CHANNELS = 8


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    lo = hi = None
    for meta in info.metadata:
        if getattr(meta, "gt", None) is not None:
            lo = meta.gt + 1
        if getattr(meta, "ge", None) is not None:
            lo = meta.ge
        if getattr(meta, "lt", None) is not None:
            hi = meta.lt - 1
        if getattr(meta, "le", None) is not None:
            hi = meta.le
    return lo, hi


def _smaller_irreps(default: o3.Irreps) -> st.SearchStrategy:
    """The default's irreps with multiplicities redrawn in 1..4 (keeps the same ls)."""
    ls = [ir for _, ir in default]
    return st.lists(st.integers(1, 4), min_size=len(ls), max_size=len(ls)).map(
        lambda muls: o3.Irreps([(m, ir) for m, ir in zip(muls, ls)])
    )


def field_strategy(name: str, info: FieldInfo) -> st.SearchStrategy | None:
    """A strategy for one params field, or None to keep its default."""
    annotation = info.annotation
    origin = typing.get_origin(annotation)
    default = info.get_default(call_default_factory=True)
    if name == "type":
        return None
    if name == "repeat":
        return st.integers(1, 2)
    if info.examples:
        # A params model names the values worth testing (e.g. a small l_max, a
        # long-range radius beyond every drawn cutoff); an optional field may keep its default.
        values = list(info.examples) + ([] if info.is_required() else [default])
        return st.sampled_from(values)
    if origin is Literal:
        return st.sampled_from(typing.get_args(annotation))
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        lo, hi = _bounds(info)
        lo = 1 if lo is None else int(lo)
        hi = (
            min(MAX_CHANNELS, int(hi))
            if hi is not None
            else max(lo, min(MAX_CHANNELS, int(default or lo)))
        )
        return st.integers(lo, max(lo, hi))
    if annotation is o3.Irreps and default is not None:
        return _smaller_irreps(parse_irreps(default))
    if origin is list and typing.get_args(annotation) == (int,) and isinstance(default, list):
        return st.lists(st.integers(1, MAX_CHANNELS), min_size=0, max_size=2)
    return None


def params_strategy(model: type[KnobModel]) -> st.SearchStrategy[KnobModel]:
    """Small valid params for ``model``: drawn fields plus defaults for the rest."""
    drawn: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        if info.is_required() and not info.examples:
            continue  # required fields (e.g. a cutoff) are supplied by the caller
        strategy = field_strategy(name, info)
        if strategy is not None:
            drawn[name] = strategy
    return st.fixed_dictionaries(drawn)
