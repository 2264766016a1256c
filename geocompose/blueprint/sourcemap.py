"""Where each value of a blueprint was written.

The loader walks the YAML node tree into plain data and, beside it, records a
:class:`SourceMap` from *key path* to :class:`~geocompose.errors.Location`. A key path
is the tuple of mapping keys and list indices that leads from the top of the file to a
value, e.g. ``("interactions", 1, "tensor_product", "l_max")``; it is exactly what
pydantic reports as an error's ``loc`` once the discriminator segments are dropped.

Every later layer (schema, compiler, verifier) that refuses something a user wrote can
ask the map where it was written, so its error names ``file:line:col``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from geocompose.errors import Location

KeyPath = tuple[str | int, ...]
"""Mapping keys (``str``) and list indices (``int``) from the document root."""

# A key that can be written after a dot without ambiguity; anything else is bracketed.
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def format_knob(path: KeyPath) -> str:
    """Render a key path the way users read it: ``a.b[1].c``.

    Args:
        path: mapping keys and list indices from the document root.

    Returns:
        The dotted path; ``""`` for the root. Keys that are not plain identifiers
        (spaces, dots, an empty string) are written as ``["key"]`` so the path stays
        unambiguous.

    >>> format_knob(("interactions", 1, "tensor_product", "l_max"))
    'interactions[1].tensor_product.l_max'
    >>> format_knob(("species", "C.sp2"))
    'species["C.sp2"]'
    """
    parts: list[str] = []
    for segment in path:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif _PLAIN_KEY.match(segment):
            parts.append(f".{segment}" if parts else segment)
        else:
            parts.append(f"[{segment!r}]".replace("'", '"'))
    return "".join(parts)


class SourceMap:
    """Key path → location of the value (and, for mapping entries, of the key).

    Args:
        file: the display name of the source, used for locations never recorded.

    Lookups never fail: a path that was never recorded (a key the user did not
    write) resolves to its nearest recorded ancestor, which is the mapping the key
    is missing from.
    """

    def __init__(self, file: str):
        self.file = file
        self._values: dict[KeyPath, Location] = {}
        self._keys: dict[KeyPath, Location] = {}
        self._texts: dict[KeyPath, str] = {}

    def record(self, path: KeyPath, value: Location, key: Location | None = None) -> None:
        """Remember where the value at ``path`` (and its key, if any) was written.

        Args:
            path: the key path of the value.
            value: where the value node starts.
            key: where the mapping key naming it starts; ``None`` for list items and
                the root.
        """
        self._values[path] = value
        if key is not None:
            self._keys[path] = key

    def record_text(self, path: KeyPath, text: str) -> None:
        """Remember the text of a scalar YAML resolved to a non-string (``NO``, ``1.0``).

        Errors use it to say what was written when YAML read it as something else:
        YAML 1.1 reads ``NO`` (Norway, nobelium) as ``false``.
        """
        self._texts[tuple(path)] = text

    def text(self, path: KeyPath) -> str | None:
        """The original text of a non-string scalar at ``path``, or ``None``."""
        return self._texts.get(tuple(path))

    def locate(self, path: KeyPath) -> Location:
        """The most specific recorded location for ``path``.

        Args:
            path: a key path, possibly longer than anything recorded.

        Returns:
            The location of the value at ``path`` if it was written; otherwise that
            of the nearest recorded ancestor (a missing key points at its parent
            mapping); otherwise the start of the file.
        """
        path = tuple(path)
        for end in range(len(path), -1, -1):
            found = self._values.get(path[:end])
            if found is not None:
                return found
        return Location(self.file, 1, 1)

    def key_location(self, path: KeyPath) -> Location:
        """Where the mapping key naming ``path`` was written.

        Use this for errors about the key itself (an unknown key), so the caret lands
        on the misspelt word rather than on its value.

        Args:
            path: a key path whose last segment is a mapping key.

        Returns:
            The key's location, or :meth:`locate` of ``path`` when there is no key
            (a list item, the root, a path never recorded).
        """
        found = self._keys.get(tuple(path))
        return found if found is not None else self.locate(path)

    def __contains__(self, path: object) -> bool:
        return path in self._values

    def __iter__(self) -> Iterator[KeyPath]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SourceMap({self.file!r}, {len(self._values)} paths)"
