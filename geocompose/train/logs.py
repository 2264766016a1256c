"""Training logs: a CSV row per epoch, TensorBoard scalars when ``tensorboard`` is
installed (it is not a dependency; without it only the CSV is written)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

__all__ = ["EpochLog"]


class EpochLog:
    """Appends one row per epoch to ``<out>/metrics.csv`` (and TensorBoard events in
    ``<out>/tensorboard`` when available). Appending, so a resumed run continues the
    same file; the header is written once."""

    def __init__(self, out: Path, tensorboard: bool = True):
        self.path = Path(out) / "metrics.csv"
        self.columns: list[str] | None = None
        if self.path.is_file() and self.path.stat().st_size:
            with self.path.open() as handle:
                self.columns = next(csv.reader(handle), None)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: CSV only
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(log_dir=str(Path(out) / "tensorboard"))

    def write(self, row: dict[str, float]) -> None:
        if self.columns is None:
            self.columns = list(row)
            with self.path.open("w", newline="") as handle:
                csv.writer(handle).writerow(self.columns)
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow([_fmt(row.get(c, "")) for c in self.columns])
        if self.writer is not None:
            step = int(row["epoch"])
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(key.replace("_", "/", 1), value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
