"""A rich progress bar for training: epochs, batches, and live metrics."""

from __future__ import annotations

import rich.progress as rp
from typing_extensions import Self

__all__ = ["Progress", "epoch_line"]


def epoch_line(row: dict[str, float]) -> str:
    """An epoch's log row as one printed line (when no live bar is shown)."""
    parts = [
        f"epoch {int(row['epoch'])}",
        f"lr {row['lr']:.2e}",
        f"train loss {row['train_loss']:.4g}",
        f"valid loss {row['valid_loss']:.4g}",
    ]
    return ", ".join(parts + _errors(row, "MAE "))


def _errors(row: dict[str, float], label: str) -> list[str]:
    """The validation energy and force MAEs of a row, in meV."""
    parts = []
    if "valid_energy_per_atom_mae" in row:
        parts.append(f"E {label}{1000 * row['valid_energy_per_atom_mae']:.2f} meV/atom")
    if "valid_forces_mae" in row:
        parts.append(f"F {label}{1000 * row['valid_forces_mae']:.1f} meV/Å")
    return parts


class Progress:
    """Two bars (epochs, batches of the current epoch) with the running training loss
    and the last validation errors; does nothing when ``enabled`` is False."""

    def __init__(self, enabled: bool, epochs: int, batches: int, start: int = 0):
        self.enabled = enabled
        self.batches = batches
        self.metrics = ""
        if not enabled:
            return
        self.bar = rp.Progress(
            rp.TextColumn("{task.description}"),
            rp.BarColumn(),
            rp.MofNCompleteColumn(),
            rp.TimeElapsedColumn(),
            rp.TimeRemainingColumn(),
            rp.TextColumn("{task.fields[info]}"),
        )
        self.epochs = self.bar.add_task("epochs", total=epochs, completed=start, info="")
        self.batch = self.bar.add_task("batches", total=batches, info="")

    def __enter__(self) -> Self:
        if self.enabled:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)

    def batch_done(self, step: int, running_loss: float) -> None:
        if self.enabled:
            self.bar.update(self.batch, completed=step, info=f"loss {running_loss:.4g}")

    def epoch_done(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        parts = [f"valid loss {row['valid_loss']:.4g}", *_errors(row, "")]
        parts.append(f"lr {row['lr']:.1e}")
        self.bar.update(self.epochs, completed=int(row["epoch"]), info=", ".join(parts))
        self.bar.reset(self.batch, total=self.batches)
