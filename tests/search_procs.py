"""Watching real search processes from the tests: which are alive, which serve an
output directory, and the ``geocompose search`` command line on a tiny space.

Importable from any test (pytest puts ``tests/`` on the path for its conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
DATA = ROOT / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"

# 3 widths x 2 depths = 6 designs, each trained in well under a second.
SPACE = """\
name: fault-search
symmetry: {group: O(3), strategy: built_in}
graph: {type: radius, cutoff: 3.0}
embedding:
  species: [Cu]
  node: {type: learned, features: {choice: [2, 4, 6]}}
  radial: {type: bessel, num: 4}
  envelope: {type: polynomial, p: 6}
interactions:
  - {type: schnet, filters: 4, repeat: {range: [1, 2]}}
readout:
  energy: {type: sum, hidden: [4]}
  forces: {type: gradient, of: energy}
"""
DESIGNS = 6


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_gone(pids, timeout: float = 10.0) -> list[int]:
    """Wait until none of ``pids`` runs; returns those still running at the timeout."""
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [pid for pid in left if alive(pid)]
    return left


def serving(out: Path) -> list[int]:
    """Live processes whose command line names ``out`` (a search and its workers)."""
    marker = str(out).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def search_command(space: Path, out: Path, trials: int = DESIGNS, *extra: str) -> list[str]:
    """``python -m geocompose search`` on ``space`` with 8 structures, 1 epoch a trial."""
    return [
        sys.executable, "-m", "geocompose", "search", str(space), str(DATA),
        "--trials", str(trials), "--budget", "1", "--structures", "8",
        "--expressivity", "none", "--out", str(out), *extra,
    ]  # fmt: skip


def start(command: list[str], log: Path) -> subprocess.Popen:
    """Start ``command`` with stdout and stderr into ``log``."""
    handle = open(log, "ab")
    try:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    finally:
        handle.close()
