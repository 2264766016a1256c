"""An ASE calculator that lives in another Python environment, driven through a worker.

A peer code often cannot share geocompose's environment (mace-torch pins e3nn 0.4.4;
geocompose needs 0.6). :class:`RemoteCalculator` is an ordinary ASE calculator in this
process whose every calculation is done by a worker process started under another
Python: that Python runs ``remote_worker.py`` by path (it imports only numpy, ASE and
the factory's module), builds the calculator with ``FACTORY(**kwargs)`` and answers one
JSON line per structure (protocol in :mod:`geocompose.verification.remote_worker`).
JSON floats are written by ``repr``, so positions and results cross exactly.

The worker dies with this process however it dies (:mod:`geocompose.children`), runs
in a session of its own (a terminal's Ctrl-C reaches only this process, which then
closes it), and is closed by :meth:`RemoteCalculator.close`, by garbage collection or
at exit. Its stderr (a model's warnings) is kept in a temporary file and its last lines
are quoted when it fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Self

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from geocompose.children import bootstrap, command
from geocompose.errors import GeocomposeError

__all__ = ["RemoteCalculator", "RemoteCalculatorError", "RemoteCalculatorRefused"]

WORKER = Path(__file__).with_name("remote_worker.py")
DEFAULT_PROPERTIES = ("energy", "forces")  # for a calculator that declares none
CLOSE_WAIT_S = 5.0
STDERR_LINES = 8


class RemoteCalculatorRefused(GeocomposeError):
    """The worker could not be started, or refused the factory (bad input)."""


class RemoteCalculatorError(RuntimeError):
    """The worker died, or its calculator raised, during a calculation: a crash of the
    model, never a verdict on it."""


def _stop(process: subprocess.Popen, stderr) -> None:
    """Close the worker's stdin (it exits at end of input); kill it if it lingers."""
    if process.poll() is None:
        try:
            process.stdin.close()
            process.wait(timeout=CLOSE_WAIT_S)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout, stderr):
        try:
            stream.close()
        except OSError:
            pass


class RemoteCalculator(Calculator):
    """``FACTORY(**kwargs)`` from ``MODULE:FACTORY``, run under ``python``.

    Args:
        factory: ``MODULE:FACTORY`` importable by ``python`` (the current directory is
            on its path).
        python: the interpreter to run the worker with (default: this one).
        kwargs: keyword arguments of the factory (JSON-serialisable).

    Attributes:
        worker: what the worker reported: its calculator's class name, implemented
            properties, and its Python, numpy and ASE versions.

    Raises:
        RemoteCalculatorRefused: a malformed spec, an interpreter that cannot be run,
            kwargs that are not JSON, a factory that cannot be imported or called.
    """

    def __init__(self, factory: str, python: str = sys.executable, kwargs: dict | None = None):
        super().__init__()
        module, sep, name = factory.partition(":")
        if not (module and sep and name):
            raise RemoteCalculatorRefused(
                f"calculator {factory!r}: write MODULE:FACTORY, e.g. ase.calculators.emt:EMT"
            )
        try:
            kwargs_line = json.dumps(kwargs or {})
        except (TypeError, ValueError) as err:
            raise RemoteCalculatorRefused(f"calculator {factory}: kwargs not JSON: {err}") from None
        self.factory, self.python = factory, python
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (the worker's lifetime)
        try:
            self._process = subprocess.Popen(
                command(python, bootstrap(path=str(WORKER)), factory),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                text=True,
                start_new_session=True,
            )
        except OSError as err:
            self._stderr.close()
            raise RemoteCalculatorRefused(
                f"python {python}: cannot be run ({err.strerror})"
            ) from None
        self._close = weakref.finalize(self, _stop, self._process, self._stderr)
        hello = self._exchange(kwargs_line, starting=True)
        if "refused" in hello:
            self.close()
            raise RemoteCalculatorRefused(f"calculator {factory} in {python}: {hello['refused']}")
        self.worker: dict = hello["ready"]
        self.implemented_properties = list(self.worker["implemented"] or DEFAULT_PROPERTIES)

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self._process.pid

    def describe(self) -> str:
        """``NAME (python X, ase Y)``: the report's title for this calculator."""
        w = self.worker
        return f"{w['calculator']} (python {w['python']} {self.python}, ase {w['ase']})"

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        # Exactly what was asked, so the worker's calculator sees the calls it would see
        # in process (EMT's results depend on its neighbour list's history at ~1e-16).
        request = {
            "numbers": self.atoms.numbers.tolist(),
            "positions": self.atoms.positions.tolist(),
            "cell": self.atoms.cell.array.tolist(),
            "pbc": self.atoms.pbc.tolist(),
            "properties": list(properties),
        }
        reply = self._exchange(json.dumps(request))
        if "not_implemented" in reply:
            raise PropertyNotImplementedError(f"{self.factory}: {reply['not_implemented']}")
        if "error" in reply:
            raise RemoteCalculatorError(
                f"{self.factory} raised in its worker: {reply['error']}\n{reply['traceback']}"
            )
        self.results = {
            name: value if isinstance(value, float) else np.asarray(value, dtype=np.float64)
            for name, value in reply["results"].items()
        }

    def close(self) -> None:
        """Stop the worker (also done at garbage collection and at exit)."""
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _exchange(self, line: str, starting: bool = False) -> dict:
        """Send one line, read the reply; a dead worker is an error naming its last words."""
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
            reply = self._process.stdout.readline()
        except (BrokenPipeError, ValueError):  # ValueError: the pipe was closed
            reply = ""
        if reply:
            return json.loads(reply)
        code = self._process.wait()
        said = self._last_words()
        self.close()
        error = RemoteCalculatorRefused if starting else RemoteCalculatorError
        raise error(
            f"calculator {self.factory}: its worker ({self.python}) exited with code {code}"
            + (f"; its last lines on stderr:\n{said}" if said else "")
        )

    def _last_words(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return "\n".join(self._stderr.read().splitlines()[-STDERR_LINES:])
