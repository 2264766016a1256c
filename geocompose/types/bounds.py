"""Bounded numeric types for knob params: every size and every cutoff uses one of these.

A blueprint is input, and an integer such as ``1e18`` or ``2**63`` in ``features`` used to
reach ``torch.empty`` and die in an overflow traceback; a cutoff of ``1e308`` overflowed
a radial basis, ``1e-300`` divided by zero, and ``500`` made the verifier's periodic
cells hold tens of millions of images. The bounds below are far beyond any published
model (MACE-MP "large" uses 224 channels and a 6 Å cutoff; long-range message passing
rarely exceeds 12 Å) and well inside what one machine can build, so a value outside
them is a mistake, refused at its ``file:line:col`` by the schema.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated

from pydantic import Field

__all__ = [
    "MAX_CUTOFF",
    "MAX_SIZE",
    "MIN_CUTOFF",
    "Cutoff",
    "Size",
    "refuse_non_number",
]

MAX_SIZE = 4096
"""Most channels, hidden units, filters, basis functions or neighbours one knob may ask for."""

MIN_CUTOFF = 0.5
"""Å: shorter than any chemical bond (H2 is 0.74 Å), so a smaller radius has no edges."""

MAX_CUTOFF = 15.0
"""Å: a local model's radius (long-range edge sets in use stop at about 12 Å). The
verifier's periodic cells are 3-6 Å wide, so its edge count grows as the cube of the
cutoff: 15 Å is already 27 times the edges of a 5 Å model; longer-range physics needs
its own block (e.g. ``long_range``), not a bigger radius."""

Size = Annotated[int, Field(gt=0, le=MAX_SIZE)]
"""A count of channels, hidden units, filters, basis functions or neighbours."""

Cutoff = Annotated[float, Field(ge=MIN_CUTOFF, le=MAX_CUTOFF, allow_inf_nan=False)]
"""A radius in Å."""


def _members(annotation: object) -> list[object]:
    """The alternatives of a (possibly Optional, possibly Annotated) field type."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _is_number_type(tp: object) -> bool:
    return tp in (int, float)


def refuse_non_number(annotation: object, value: object) -> None:
    """Refuse a boolean or a string given where only a number (or null) is valid.

    pydantic's lax mode reads ``true`` as ``1`` and the string ``"5.0"`` as ``5.0``; a
    blueprint is strict: ``cutoff: "5.0"`` is a typo (quotes) the user should see, and
    ``hidden: yes`` is not a width. Lists of numbers (``hidden: [64, "32"]``) are checked
    item by item. Fields that also take text (``eval_frames: all``) or booleans are
    left to their own validation.

    Args:
        annotation: the field's type as pydantic stores it (``FieldInfo.annotation``).
        value: the input, before validation.

    Raises:
        ValueError: the message names what was given and what to write instead.
    """
    members = [m for m in _members(annotation) if m is not type(None)]
    if not members:
        return
    if all(typing.get_origin(m) is list for m in members):
        items = [m for lst in members for m in _members(typing.get_args(lst)[0])]
        if all(_is_number_type(m) for m in items) and isinstance(value, list):
            for i, item in enumerate(value):
                _refuse_scalar(item, _kind(items), f"item {i}: ")
        return
    if all(_is_number_type(m) for m in members):
        _refuse_scalar(value, _kind(members), "")


def _kind(members: list[object]) -> str:
    return "an integer" if all(m is int for m in members) else "a number"


def _refuse_scalar(value: object, kind: str, where: str) -> None:
    if isinstance(value, bool):
        raise ValueError(f"{where}must be {kind}; got the boolean {str(value).lower()}")
    if isinstance(value, str):
        hint = f" (write {value.strip()} without quotes)" if _looks_numeric(value) else ""
        raise ValueError(f"{where}must be {kind}, not the string {value!r}{hint}")


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
