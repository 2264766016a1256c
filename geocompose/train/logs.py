"""Training logs: a CSV row per epoch, TensorBoard scalars when ``tensorboard`` is
installed (it is not a dependency; without it only the CSV is written).

The trainer writes an epoch's row *before* its checkpoint, so every checkpointed epoch
has its row; a kill between the two leaves a row the checkpoint does not know. A run
therefore opens its log at the epoch it starts from (``after_epoch``): rows of later
epochs, and a last line cut off mid-write, are dropped (the file is rewritten
atomically), so a resumed run never repeats a row. TensorBoard events of those epochs are
dropped by TensorBoard's own ``purge_step``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from geocompose.train.atomic import atomic_write

__all__ = ["LOG_NAME", "EpochLog", "read_rows"]

LOG_NAME = "metrics.csv"


class EpochLog:
    """Appends one row per epoch to ``<out>/metrics.csv`` (and TensorBoard events in
    ``<out>/tensorboard`` when available).

    Args:
        out: the run directory.
        after_epoch: the epoch the run starts after: rows of later epochs are removed (0
            starts a new log). None appends to whatever is there.
        tensorboard: also write TensorBoard events when it is importable.
    """

    def __init__(self, out: Path, after_epoch: int | None = None, tensorboard: bool = True):
        self.path = Path(out) / LOG_NAME
        self.columns: list[str] | None = None
        if after_epoch is not None:
            _truncate(self.path, after_epoch)
        if self.path.is_file() and self.path.stat().st_size:
            with self.path.open(newline="") as handle:
                self.columns = next(csv.reader(handle), None)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: CSV only
                SummaryWriter = None
            if SummaryWriter is not None:
                purge = {"purge_step": after_epoch + 1} if after_epoch else {}
                self.writer = SummaryWriter(log_dir=str(Path(out) / "tensorboard"), **purge)

    def write(self, row: dict[str, float]) -> None:
        """Append ``row`` (durably: flushed and fsynced before the checkpoint follows)."""
        text = io.StringIO()
        if self.columns is None:
            self.columns = list(row)
            csv.writer(text).writerow(self.columns)
        csv.writer(text).writerow([_fmt(row.get(c, "")) for c in self.columns])
        with self.path.open("a", newline="") as handle:
            handle.write(text.getvalue())  # one write: a kill cuts at most this line
            handle.flush()
            os.fsync(handle.fileno())
        if self.writer is not None:
            step = int(row["epoch"])
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(key.replace("_", "/", 1), value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_rows(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """The header and the complete rows of a log (a line cut off mid-write is left out)."""
    text = Path(path).read_text() if Path(path).is_file() else ""
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # the last line was cut off mid-write
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return [], []
    header = rows[0]
    return header, [r for r in rows[1:] if len(r) == len(header)]


def _truncate(path: Path, after_epoch: int) -> None:
    """Keep the rows of epochs ``1..after_epoch``; remove the log when none is kept."""
    if not path.is_file():
        return
    if after_epoch <= 0:
        path.unlink()
        return
    header, rows = read_rows(path)
    if "epoch" not in header:  # not a log this module wrote: start afresh
        path.unlink()
        return
    column = header.index("epoch")
    kept = [r for r in rows if 0 < _epoch(r[column]) <= after_epoch]
    text = io.StringIO()
    csv.writer(text).writerows([header, *kept])
    atomic_write(path, lambda handle: handle.write(text.getvalue().encode()))


def _epoch(value: str) -> int:
    """The epoch of a row; 0 (never kept) when the field is not an integer."""
    try:
        return int(value)
    except ValueError:
        return 0


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
