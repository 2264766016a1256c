"""Loading a script of ``benchmarks/`` in a test: by path (``benchmarks/`` is not a
package), with ``benchmarks/`` on ``sys.path`` while it is in use, as when it runs."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


@contextmanager
def loaded(name: str) -> Iterator[ModuleType]:
    """``benchmarks/NAME.py`` as a module; ``sys.path`` is restored afterwards."""
    saved = list(sys.path)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path[:] = saved
