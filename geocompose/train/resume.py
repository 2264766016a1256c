"""What a resumed run may change, the record of what it did change, and the checkpoint
contents a run writes (:func:`snapshot`) and a resume reads back (:func:`restore`).

A resumed run continues the checkpoint's settings. A setting given again with another
value (a learning rate, a batch size, a loss weight, an edited blueprint of the same
name) would silently turn the run into a different one, so :func:`compare` lists every
difference and the trainer refuses them unless told to override; an override is
appended to ``<out>/overrides.jsonl`` and kept in the checkpoints. Two settings cannot
be overridden: the split fractions (the splits themselves are stored in the checkpoint,
so a new fraction would change nothing but the record).

Example::

    changes = compare(state, {"lr": 1e-2}, blueprint=None)
    [str(c) for c in changes]   # ["lr: 0.001 -> 0.01"]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from geocompose.data.dataset import Splits
from geocompose.errors import GeocomposeError
from geocompose.train.checkpoint import CheckpointError, check_tensors, load_weights
from geocompose.train.ema import EMA

__all__ = [
    "FIXED",
    "FREE",
    "OVERRIDES_NAME",
    "Change",
    "ResumeConflict",
    "check_data",
    "compare",
    "record",
    "restore",
    "snapshot",
]

OVERRIDES_NAME = "overrides.jsonl"
FREE = ("epochs",)
"""Settings a resume may change freely: continuing for more epochs is what it is for."""
FIXED = ("valid_fraction", "test_fraction")
"""Settings no resume may change: the checkpoint stores the splits they made."""
BLUEPRINT = "blueprint"


@dataclass(frozen=True)
class Change:
    """One setting whose given value differs from the checkpoint's.

    Attributes:
        name: a TrainConfig field, or ``blueprint`` (then ``path`` says where).
        saved: the checkpoint's value.
        given: the value asked for now.
        path: inside the blueprint, the differing key (``interactions[0].filters``).
    """

    name: str
    saved: Any
    given: Any
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.name}.{self.path}" if self.path else self.name
        return f"{where}: {self.saved!r} -> {self.given!r}"


class ResumeConflict(GeocomposeError):
    """Settings given to a resume differ from the checkpoint's (see :func:`compare`)."""

    def __init__(self, out: Path, changes: list[Change], fixed: bool):
        self.changes = changes
        self.fixed = fixed
        listed = "; ".join(str(c) for c in changes)
        advice = (
            "the checkpoint stores its splits; start a new run for another split"
            if fixed
            else "pass the checkpoint's values, or --override to continue with these"
        )
        super().__init__(f"--resume: {out} was trained with other settings ({listed}); {advice}")


def compare(
    state: Mapping[str, Any], settings: Mapping[str, Any], blueprint: Mapping | None
) -> list[Change]:
    """Every given setting (and the blueprint, when given) that differs from ``state``'s.

    Args:
        state: a loaded checkpoint.
        settings: TrainConfig field -> value, only those asked for explicitly.
        blueprint: the validated blueprint as a JSON-mode dict, or None (not given).
    """
    saved = state["config"]
    changes = [
        Change(name, saved.get(name), value)
        for name, value in settings.items()
        if name not in FREE and saved.get(name) != value
    ]
    if blueprint is not None:
        changes += [
            Change(BLUEPRINT, old, new, path)
            for path, old, new in _differences(state["blueprint"], blueprint)
        ]
    return changes


def record(out: Path, after_epoch: int, changes: list[Change]) -> dict[str, Any]:
    """Append the overrides of a resume to ``<out>/overrides.jsonl``; returns the entry."""
    entry = {"after_epoch": after_epoch, "changes": [str(c) for c in changes]}
    out.mkdir(parents=True, exist_ok=True)
    with (out / OVERRIDES_NAME).open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    return entry


def snapshot(trainer) -> dict[str, Any]:
    """A Trainer's checkpoint contents (tensors and plain values only): what
    :func:`restore` reads back."""
    cpu = lambda d: {k: v.detach().cpu() for k, v in d.items()}
    return {
        "blueprint": trainer.blueprint,
        "species": list(trainer.potential.species),
        "dtype": trainer.config.dtype,
        "weights": cpu(trainer.potential.state_dict()),
        "ema": None
        if trainer.ema is None
        else {**trainer.ema.state_dict(), "shadow": cpu(trainer.ema.shadow)},
        "optimizer": trainer.optimizer.state_dict(),
        "schedule": trainer.schedule.state_dict(),
        "epoch": trainer.epoch,
        "best_loss": trainer.best_loss,
        "best_epoch": trainer.best_epoch,
        "bad_epochs": trainer.bad_epochs,
        "config": asdict(trainer.config),
        "splits": {
            name: list(getattr(trainer.splits, name)) for name in ("train", "valid", "test")
        },
        "data": trainer.data.source,
        "data_size": len(trainer.data),
        "data_fingerprint": trainer.data_fingerprint,
        "metrics": dict(trainer.metrics),
        "overrides": list(trainer.overrides),
    }


def restore(trainer, state: Mapping[str, Any], where: str) -> None:
    """Load a checkpoint's training state into a Trainer built with its (possibly
    overridden) settings: weights, optimiser, schedule, average, counters.

    Raises:
        CheckpointError: weights or averages that do not fit the trainer's model.
    """
    config = trainer.config
    load_weights(trainer.potential, state["weights"], f"{where}: weights")
    trainer.optimizer.load_state_dict(state["optimizer"])
    for group in trainer.optimizer.param_groups:  # the saved groups carry the old decay
        group["weight_decay"] = config.weight_decay
    trainer.schedule.load_state_dict(state["schedule"])
    if trainer.ema is not None:
        if state.get("ema") is not None:
            check_tensors(trainer.ema.shadow, state["ema"]["shadow"], f"{where}: averaged weights")
            trainer.ema.load_state_dict(state["ema"])
            trainer.ema.decay = config.ema_decay  # an overridden decay, else the same
        else:  # averaging turned on by an override: start it from the loaded weights
            trainer.ema = EMA(trainer.potential, config.ema_decay)
    trainer.overrides = list(state.get("overrides") or [])
    trainer.epoch = int(state["epoch"])
    trainer.best_loss, trainer.best_epoch = float(state["best_loss"]), int(state["best_epoch"])
    trainer.bad_epochs = int(state["bad_epochs"])
    trainer.metrics = dict(state.get("metrics") or {})


def check_data(state: Mapping[str, Any], data, out: Path):
    """The checkpoint's splits, once ``data`` is shown to be the set it was trained on.

    Raises:
        CheckpointError: fewer structures than the splits index, another size than the
            checkpoint's, or other structures of the same size (their fingerprint).
    """
    splits = Splits(**{k: list(v) for k, v in state["splits"].items()})
    needed = max([*splits.train, *splits.valid, *splits.test], default=-1) + 1
    if len(data) < needed or len(data) != state.get("data_size", len(data)):
        raise CheckpointError(
            f"the checkpoint in {out} was trained on {state.get('data_size')} structures "
            f"({state.get('data')}); this data set has {len(data)}"
        )
    saved = state.get("data_fingerprint")  # absent from checkpoints before it existed
    if saved is not None and saved != data.fingerprint():
        raise CheckpointError(
            f"the checkpoint in {out} was trained on other structures ({state.get('data')}, "
            f"as many as this data set's {len(data)}, but not the same); resume with the "
            "same data, or start a new run"
        )
    return splits


def _differences(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, old, new) of every leaf where two JSON-like values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in [*old, *(k for k in new if k not in old)]:
            found += _differences(
                old.get(key), new.get(key), f"{path}.{key}" if path else str(key)
            )
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for i, (a, b) in enumerate(zip(old, new)):
            found += _differences(a, b, f"{path}[{i}]")
        return found
    return [] if old == new else [(path, old, new)]
