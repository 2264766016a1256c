"""What every command shares: the consoles, the one CLI error, and exit codes.

Exit codes (the same for every command; :func:`geocompose.cli.main.main` is the one
handler that applies them):

* ``0``: done; for ``verify``, every claim holds.
* ``1``: a claim was measured to be false (:class:`~geocompose.errors.VerificationFailed`),
  or a job failed by its own criterion.
* ``2``: the user's input is wrong: an invalid blueprint or structure, an unreadable
  file or an unwritable output path, an unknown knob name, a bad command line, an
  error inside a module given to ``--import``.
* ``3``: an internal error, a bug in geocompose: a short line and the traceback go
  to stderr.

A :class:`~geocompose.errors.GeocomposeError` is turned into its one-paragraph message;
anything else is a bug and keeps its traceback (with exit 3, never 1).
"""

from __future__ import annotations

import errno
import json
import os
import sys
import traceback
from typing import TextIO

from rich.console import Console

from geocompose.errors import GeocomposeError, VerificationFailed

__all__ = [
    "EXIT_CONTRACT",
    "EXIT_FAILED",
    "EXIT_INTERNAL",
    "EXIT_INVALID",
    "EXIT_OK",
    "CommandError",
    "UserCodeError",
    "console",
    "exit_code",
    "file_error",
    "json_object",
    "render",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERNAL = 3

EXIT_CONTRACT = (
    "Exit codes (every command): 0 ok; 1 a claim is violated or a job failed its own "
    "criterion; 2 bad input (blueprint, data, paths, command line); 3 internal error "
    "(a bug in geocompose: reported with its traceback)."
)
"""The contract as ``geocompose --help`` prints it (the README says the same)."""

_USER_PATH_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EROFS,
        errno.ENOSPC,
        errno.EEXIST,
        errno.ENAMETOOLONG,
        errno.EDQUOT,
    }
)
"""What goes wrong with a path a user gave: it exists or not, may be written or not."""

_PIPE_WIDTH = 120
"""Table width when output is not a terminal (rich would otherwise assume 80 columns)."""


class CommandError(GeocomposeError):
    """A user mistake on the command line itself (unknown knob, unwritable output file)."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)

    def render(self) -> str:
        return f"geocompose: {self.message}"


class UserCodeError(CommandError):
    """A module given to ``--import`` raised while importing: their code, their traceback.

    Args:
        module: the module name as given on the command line.
        error: what it raised.
    """

    def __init__(self, module: str, error: BaseException):
        self.error = error
        self.details = "".join(traceback.format_exception(error)).rstrip()
        summary = " ".join(f"{type(error).__name__}: {error}".split())
        super().__init__(f"--import {module}: the module raised {summary}")

    def render(self) -> str:
        return f"{self.details}\n{super().render()}"


def file_error(err: OSError) -> CommandError | None:
    """An ``OSError`` on a path as the user's mistake (exit 2), or ``None`` when it is not.

    Every command writes to paths the user names (``--out``, ``OUT.pt2``, ``--json``,
    ``--plot``); turning the error here, in the one handler, covers them all. Only
    errors that carry a file name and say something about that path (missing,
    not writable, a directory, a full disk) qualify; anything else stays a bug.
    """
    if err.filename is None or err.errno not in _USER_PATH_ERRNOS:
        return None
    target = f"{err.filename} -> {err.filename2}" if err.filename2 else str(err.filename)
    return CommandError(f"cannot use {target}: {err.strerror or err}")


def json_object(text: str, option: str) -> dict:
    """``text`` (the value of ``option``) as a JSON object.

    Raises:
        CommandError: it is not valid JSON, or not an object.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise CommandError(f"{option} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise CommandError(f"{option} must be a JSON object; got {type(value).__name__}")
    return value


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
