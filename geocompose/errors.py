"""The one exception tree.

Everything a *user* can get wrong (a blueprint, a structure, a claim that does not
hold) raises a subclass of :class:`GeocomposeError`. The CLI catches only these;
anything else is a bug in geocompose and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A 1-based position in a source file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class GeocomposeError(Exception):
    """Base of every error a user can cause."""


class BlueprintError(GeocomposeError):
    """A blueprint that cannot be read, validated or compiled.

    Args:
        message: what is wrong and what would be valid.
        location: where in the file, when known.
        knob: the knob path, e.g. ``interactions[1].tensor_product.l_max``.
    """

    def __init__(self, message: str, location: Location | None = None, knob: str | None = None):
        self.message = message
        self.location = location
        self.knob = knob
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        knob = f"{self.knob}: " if self.knob else ""
        return f"{where}{knob}{self.message}"


class BlueprintErrors(BlueprintError):
    """Several independent blueprint errors, reported together so nothing is lost."""

    def __init__(self, errors: list[BlueprintError]):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, first.location, first.knob)

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


class StructureError(GeocomposeError):
    """A structure or batch the model cannot take (unknown species, bad shapes, NaN)."""


class MemoryRefusal(StructureError):
    """A batch whose estimated peak memory exceeds what the machine has available
    (refused before the call, instead of an allocator error during it)."""


class VerificationFailed(GeocomposeError):
    """A symmetry or physics claim that the verifier measured to be false."""


def did_you_mean(word: object, choices: Sequence[str]) -> str:
    """A ``"did you mean 'x'?"`` hint, or ``""`` when nothing is close.

    The one suggester for every layer (blueprint keys and ``type`` names, field names
    a block reads, knob names on the command line).

    Args:
        word: what the user wrote.
        choices: the valid names.
    """
    if not isinstance(word, str) or not choices:
        return ""
    folded = {c.lower(): c for c in choices}
    if word.lower() in folded and folded[word.lower()] != word:
        return f"did you mean {folded[word.lower()]!r}?"
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""
