"""A requested tensor-product path as a user writes it, and its checks.

``tensor_product.paths`` lists paths such as ``"1o x 1o -> 1e"`` (parities fixed) or
``[1, 1, 2]`` (every parity the rules allow). This module parses them
(:class:`PathSpec`, the pydantic type :data:`PathSpecField`) and refuses one that can
never be instantiated, naming it; :mod:`geocompose.nn.ops.paths` instantiates them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from e3nn import o3
from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from geocompose.types.signature import TypeRefusal

__all__ = ["PathSpec", "PathSpecField", "check_spec"]


_IRREP = r"(\d+)([eo])"
_PATH_RE = re.compile(rf"^\s*{_IRREP}\s*x\s*{_IRREP}\s*->\s*{_IRREP}\s*$")
_PARITY = {"e": 1, "o": -1}


@dataclass(frozen=True)
class PathSpec:
    """One requested path, as a user writes it.

    ``"1o x 1o -> 1e"`` fixes parities; ``[1, 1, 2]`` fixes only the orders ``l`` and
    matches every parity the rules allow (``p3 = p1 * p2``).
    """

    l1: int
    l2: int
    l3: int
    p1: int | None = None
    p2: int | None = None
    p3: int | None = None

    @classmethod
    def parse(cls, value: Any) -> PathSpec:
        if isinstance(value, PathSpec):
            return value
        if isinstance(value, str):
            match = _PATH_RE.match(value)
            if match is None:
                raise ValueError(f"path '{value}' is not of the form '1o x 1o -> 1e'")
            l1, p1, l2, p2, l3, p3 = match.groups()
            return cls(int(l1), int(l2), int(l3), _PARITY[p1], _PARITY[p2], _PARITY[p3])
        if (
            isinstance(value, (list, tuple))
            and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        ):
            return cls(*value)
        raise ValueError(f"a path is written '1o x 1o -> 1e' or [l1, l2, l3]; got {value!r}")

    @property
    def has_parity(self) -> bool:
        return self.p1 is not None

    def __str__(self) -> str:
        if not self.has_parity:
            return f"[{self.l1}, {self.l2}, {self.l3}]"
        s = {1: "e", -1: "o"}
        return f"{self.l1}{s[self.p1]} x {self.l2}{s[self.p2]} -> {self.l3}{s[self.p3]}"

    def violation(self) -> str | None:
        """Which selection rule the path breaks, or None."""
        if not abs(self.l1 - self.l2) <= self.l3 <= self.l1 + self.l2:
            return (
                f"path {self} breaks the triangle rule |l1 - l2| <= l3 <= l1 + l2 "
                f"(here {abs(self.l1 - self.l2)} <= {self.l3} <= {self.l1 + self.l2} is false)"
            )
        if self.has_parity and self.p1 * self.p2 != self.p3:
            right = "e" if self.p1 * self.p2 == 1 else "o"
            return (
                f"path {self} breaks the parity rule p3 = p1 * p2 "
                f"(the product of these inputs is {self.l3}{right})"
            )
        return None

    def matches(self, ir1: o3.Irrep, ir2: o3.Irrep, ir3: o3.Irrep) -> bool:
        if (ir1.l, ir2.l, ir3.l) != (self.l1, self.l2, self.l3):
            return False
        return not self.has_parity or (ir1.p, ir2.p, ir3.p) == (self.p1, self.p2, self.p3)


PathSpecField = Annotated[
    PathSpec,
    BeforeValidator(PathSpec.parse),
    PlainSerializer(lambda s: str(s) if s.has_parity else [s.l1, s.l2, s.l3]),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+[eo]\s*x\s*\d+[eo]\s*->\s*\d+[eo]\s*$"},
                {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0},
                    "minItems": 3,
                    "maxItems": 3,
                },
            ],
            "description": "a path such as '1o x 1o -> 1e', or [l1, l2, l3] for every parity",
        }
    ),
]
"""Pydantic type of one entry of ``tensor_product.paths``."""


def check_spec(
    spec: PathSpec,
    irreps_in2: o3.Irreps,
    keep_out: Callable[[o3.Irrep], bool],
    names: tuple[str, str],
) -> TypeRefusal | None:
    """Refuse a requested path that can never be instantiated, naming it."""
    broken = spec.violation()
    if broken is not None:
        return TypeRefusal(
            broken, "keep |l1 - l2| <= l3 <= l1 + l2 and p3 = p1 * p2, e.g. '1o x 1o -> 1e'"
        )
    second = [
        ir for _, ir in irreps_in2 if ir.l == spec.l2 and (not spec.has_parity or ir.p == spec.p2)
    ]
    if not second:
        return TypeRefusal(
            f"path {spec} needs l={spec.l2}{'' if not spec.has_parity else ' parity ' + ('e' if spec.p2 == 1 else 'o')} "
            f"in {names[1]}, which holds {irreps_in2}",
            "spherical harmonics of edge vectors have parity (-1)^l; raise embedding.angular.l_max "
            "or tensor_product.l_max if l is too high",
        )
    outs = [o3.Irrep(spec.l3, p) for p in ((spec.p3,) if spec.has_parity else (1, -1))]
    if not any(keep_out(ir) for ir in outs):
        return TypeRefusal(
            f"path {spec} produces l={spec.l3}, which the block's features or max_l_out exclude",
            "add that irrep to the features, or drop the path",
        )
    return None
