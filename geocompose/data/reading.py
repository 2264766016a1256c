"""Reading structure files with errors that name the file, the frame and the line.

ASE's readers stop at the first bad line with messages written for programmers:
``KeyError: 'Qq'`` for an unknown element, ``generator raised StopIteration`` for a file
cut inside a frame header. Here frames are read one at a time, so the frame that failed
is known; for the (ext)xyz formats, whose frames are "count line, comment line, one
line per atom", the line is found too, and the message says what is wrong in words.

Coincident atoms (two atoms at the same place, periodic images included) are refused
too: every geometric model divides by the distance between them.
"""

from __future__ import annotations

import re
from pathlib import Path

import ase
import numpy as np

from geocompose.errors import StructureError

__all__ = ["COINCIDENT_DISTANCE", "coincident_atoms", "read_structures"]

COINCIDENT_DISTANCE = 1e-2
"""Å: atoms closer than this are one atom written twice, not a physical structure."""

_XYZ_FORMATS = {"xyz", "extxyz"}
_NOT_A_NUMBER = re.compile(r"could not convert string to float: '([^']*)'")
_PROPERTIES = re.compile(r"Properties=([^\s\"]+)", re.IGNORECASE)


def read_structures(path: Path, format: str | None = None, index: str = ":") -> list[ase.Atoms]:
    """Every frame of a file ASE reads, or a located :class:`StructureError`.

    Args:
        path: an existing file.
        format: ASE format name when the extension does not say it.
        index: ASE index string (``":"`` is every frame).

    Raises:
        StructureError: ``FILE:LINE: frame K[, atom J]: what is wrong`` for the xyz
            formats (their layout is checked here first: atom counts, truncation,
            columns per atom line); ``FILE: frame K: ...`` for other formats.
    """
    import ase.io

    is_xyz = (format or path.suffix.lstrip(".").lower()) in _XYZ_FORMATS
    lines = path.read_text(errors="replace").splitlines() if is_xyz else []
    starts = _xyz_layout(path, lines) if is_xyz else []
    frames: list[ase.Atoms] = []
    try:
        for atoms in ase.io.iread(path, index=index, format=format):
            frames.append(atoms)
    except Exception as err:  # noqa: BLE001 - ASE raises many types for a malformed file
        problem = " ".join(f"{type(err).__name__}: {err}".split())
        frame = len(frames)
        if not is_xyz or index != ":" or frame >= len(starts):
            raise StructureError(f"{path}: frame {frame}: cannot be read ({problem})") from None
        raise StructureError(_locate_in_frame(path, lines, starts[frame], frame, err)) from None
    return frames


def _xyz_layout(path: Path, lines: list[str]) -> list[int]:
    """The 0-based first line of every frame, after checking the frames' layout.

    Raises:
        StructureError: an empty file, a count line that is not a count, a file that
            ends inside a frame, or an atom line with the wrong number of columns.
    """
    if not any(line.strip() for line in lines):
        raise StructureError(f"{path}: the file is empty; expected xyz frames")
    starts: list[int] = []
    start = 0
    while start < len(lines):
        if not lines[start].strip() and not any(x.strip() for x in lines[start:]):
            break  # trailing blank lines
        frame = len(starts)
        where = f"{path}:{start + 1}: frame {frame}"
        count = _count(lines[start])
        if count is None:
            got = lines[start].strip()[:40]
            hint = ""
            if frame and len(lines[start].split()) > 1:
                hint = f" (frame {frame - 1} has more atom lines than its count says?)"
            raise StructureError(
                f"{where}: expected the number of atoms on this line; got {got!r}{hint}"
            )
        if start + 2 + count > len(lines):
            written = max(0, len(lines) - start - 2)
            raise StructureError(
                f"{where}: the file ends inside this frame (it declares {count} atoms; "
                f"{written} atom line(s) follow); was the file truncated?"
            )
        body = lines[start + 2 : start + 2 + count]
        expected = _columns(lines[start + 1]) or (len(body[0].split()) if body else 0)
        for atom, line in enumerate(body):
            if len(line.split()) == 1 and expected > 1 and _count(line) is not None:
                raise StructureError(
                    f"{path}:{start + 3 + atom}: frame {frame}: a count line where atom "
                    f"{atom} should be; the frame declares {count} atoms but has {atom} "
                    "(an atom line is missing?)"
                )
            if len(line.split()) != expected:
                raise StructureError(
                    f"{path}:{start + 3 + atom}: frame {frame}, atom {atom}: "
                    f"{len(line.split())} columns, expected {expected}"
                )
        starts.append(start)
        start += count + 2
    return starts


def _columns(comment: str) -> int | None:
    """Columns per atom line that an extxyz ``Properties=name:type:n:...`` declares."""
    found = _PROPERTIES.search(comment)
    if not found:
        return None
    fields = found.group(1).split(":")
    try:
        return sum(int(n) for n in fields[2::3])
    except ValueError:
        return None


def _locate_in_frame(path: Path, lines: list[str], start: int, frame: int, err: Exception) -> str:
    """One sentence, at its line, for what ASE raised while reading ``frame``."""
    body = range(start + 2, start + 2 + (_count(lines[start]) or 0))
    if isinstance(err, KeyError):
        symbol = str(err.args[0]) if err.args else "?"
        line = _first_line_with(lines, body, symbol)
        return f"{_atom(path, line, start, frame)}: unknown chemical symbol {symbol!r}"
    number = _NOT_A_NUMBER.search(str(err))
    if number:
        line = _first_line_with(lines, body, number.group(1))
        return f"{_atom(path, line, start, frame)}: {number.group(1)!r} is not a number"
    problem = " ".join(f"{type(err).__name__}: {err}".split())
    return f"{path}:{start + 1}: frame {frame}: cannot be read ({problem})"


def _atom(path: Path, line: int, start: int, frame: int) -> str:
    return f"{path}:{line + 1}: frame {frame}, atom {line - start - 2}"


def _count(line: str) -> int | None:
    try:
        count = int(line.strip())
    except ValueError:
        return None
    return count if count >= 0 else None


def _first_line_with(lines: list[str], candidates: range, token: str) -> int:
    for i in candidates:
        if token in lines[i].split():
            return i
    return candidates.start


def coincident_atoms(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray
) -> tuple[int, int, float] | None:
    """The first pair of atoms closer than :data:`COINCIDENT_DISTANCE`, or ``None``.

    Periodic images count: an atom on a lattice vector from another is the same atom.
    A cell-list search (ASE's), so it stays linear in the number of atoms.

    Returns:
        ``(i, j, distance)`` with ``i < j``, or ``None``.
    """
    from ase.neighborlist import primitive_neighbor_list

    if len(positions) < 2:
        return None
    i, j, d = primitive_neighbor_list(
        "ijd", pbc, cell, positions, COINCIDENT_DISTANCE, self_interaction=False
    )
    close = [(int(a), int(b), float(r)) for a, b, r in zip(i, j, d, strict=True) if a < b]
    return min(close) if close else None

