"""Atomic file writes for a run directory, and the clean-up of what a kill left behind.

A file is written to a temporary sibling ``.<name>.<random>.tmp`` (created with mode
``0o666`` minus the umask, as ``open`` would, so a checkpoint is as readable as any other
file the user writes; ``tempfile.mkstemp`` would force 0600), flushed, fsynced and
renamed over the final name with ``os.replace``: a reader sees the old file or the new
one, never a truncated one. A process killed between creating and renaming the
temporary leaves it behind; :func:`remove_temporaries` deletes such leftovers when the
next run starts in the same directory.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "remove_temporaries", "temporaries"]


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` atomically: ``write(handle)`` fills a temporary that replaces it.

    Args:
        path: the final file; its directory is created when missing.
        write: fills the binary handle it is given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # 48 random bits taken already: draw another name
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def temporaries(directory: str | Path, names: Iterable[str]) -> list[Path]:
    """The temporaries :func:`atomic_write` would use for ``names`` in ``directory``."""
    directory = Path(directory)
    return sorted(p for name in names for p in directory.glob(f".{name}.*.tmp") if p.is_file())


def remove_temporaries(directory: str | Path, names: Iterable[str]) -> list[Path]:
    """Delete the leftover temporaries of ``names`` (a killed writer's); returns them.

    Call it only where no other process writes the same files (the run's one writer,
    when it starts).
    """
    found = temporaries(directory, names)
    for path in found:
        path.unlink(missing_ok=True)
    return found
