"""Checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values
(dict, list, str, int, float, bool, None), so ``torch.load(weights_only=True)`` can
read it without unpickling arbitrary objects. It embeds everything needed to rebuild
the model without the YAML file: the validated blueprint as a dict, the species, the
parameter dtype, the weights (raw and averaged), the reference energies and scale, and
for ``--resume`` the optimiser, schedule, epoch counters, configuration and splits.

Writes go to a temporary file in the same directory followed by ``os.replace``, so a
crash mid-write never leaves a truncated checkpoint under the final name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from geocompose.compiler import compile as compile_blueprint
from geocompose.errors import GeocomposeError
from geocompose.train.potential import Potential

__all__ = ["FORMAT", "CheckpointError", "load_checkpoint", "load_potential", "save_checkpoint"]

FORMAT = "geocompose.checkpoint/1"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class CheckpointError(GeocomposeError):
    """A checkpoint that is missing, unreadable, or not a geocompose checkpoint."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, **state}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary unpickling).

    Raises:
        CheckpointError: missing file, not loadable safely, or another format.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError...
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(err).__name__}: {err}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint (found {found!r})")
    return state


def build_potential(state: dict[str, Any], averaged: bool = True) -> Potential:
    """The Potential a checkpoint describes, in eval mode.

    Args:
        state: a loaded checkpoint.
        averaged: use the EMA weights when the checkpoint has them.
    """
    dtype = DTYPES[state["dtype"]]
    model = compile_blueprint(state["blueprint"], dtype=dtype)
    potential = Potential(
        model, reference=state["weights"]["reference"], scale=float(state["weights"]["scale"])
    )
    potential.load_state_dict(state["weights"])
    if averaged and state.get("ema") is not None:
        with torch.no_grad():
            for name, p in potential.named_parameters():
                p.copy_(state["ema"]["shadow"][name])
    return potential.eval()


def load_potential(path: str | Path, averaged: bool = True) -> Potential:
    """Load a trained :class:`Potential` from a checkpoint file (eval mode)."""
    return build_potential(load_checkpoint(path), averaged)
