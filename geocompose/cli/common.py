"""What every command shares: the consoles, the one CLI error, and exit codes.

Exit codes (the same for every command):

* ``0``: done; for ``verify``, every claim holds.
* ``1``: a claim was measured to be false (:class:`~geocompose.errors.VerificationFailed`).
* ``2``: the user's input is wrong: an invalid blueprint or structure, an unreadable
  file, an unknown knob name, a bad command line.

Only :class:`~geocompose.errors.GeocomposeError` is turned into a message and an exit
code; anything else is a bug in geocompose and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console

from geocompose.errors import GeocomposeError, VerificationFailed

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INVALID",
    "EXIT_OK",
    "CommandError",
    "console",
    "exit_code",
    "render",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERNAL = 3

_PIPE_WIDTH = 120
"""Table width when output is not a terminal (rich would otherwise assume 80 columns)."""


class CommandError(GeocomposeError):
    """A user mistake on the command line itself (unknown knob, unwritable output file)."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)

    def render(self) -> str:
        return f"geocompose: {self.message}"


def render(err: GeocomposeError) -> str:
    """The located paragraph of an error, as the user should read it.

    ``BlueprintError`` renders ``file:line:col: knob: message``; ``StructureError`` and
    ``VerificationFailed`` carry their message as plain exception text.
    """
    text = err.render() if hasattr(err, "render") else str(err)
    return text or type(err).__name__


def exit_code(err: GeocomposeError) -> int:
    """1 for a violated claim, 2 for everything the user wrote wrong."""
    return EXIT_FAILED if isinstance(err, VerificationFailed) else EXIT_INVALID


def console(stream: TextIO | None = None) -> Console:
    """A rich console on ``stream`` (stdout by default), looked up at call time.

    Looking ``sys.stdout`` up per call (not at import) is what lets pytest's capture
    and ``contextlib.redirect_stdout`` see the output of an in-process ``main([...])``.
    """
    stream = sys.stdout if stream is None else stream
    if stream.isatty():
        return Console(file=stream)
    width = int(os.environ.get("COLUMNS", _PIPE_WIDTH))
    return Console(file=stream, width=width, color_system=None, soft_wrap=False)
