"""Checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values
(dict, list, str, int, float, bool, None), so ``torch.load(weights_only=True)`` can
read it without unpickling arbitrary objects. It embeds everything needed to rebuild
the model without the YAML file: the validated blueprint as a dict, the species, the
parameter dtype, the weights (raw and averaged), the reference energies and scale, and
for ``--resume`` the optimiser, schedule, epoch counters, configuration and splits.

Writes go through :func:`~geocompose.train.atomic.atomic_write` (a temporary file in the
same directory, then ``os.replace``), so a crash mid-write never leaves a truncated
checkpoint under the final name. Weights are loaded only after every tensor's name and
shape has been matched against the model the blueprint builds, so a checkpoint from
another blueprint is refused naming the first tensor that does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from geocompose.compiler import compile as compile_blueprint
from geocompose.compiler import exact_state
from geocompose.errors import GeocomposeError
from geocompose.train.atomic import atomic_write
from geocompose.train.potential import Potential

__all__ = [
    "FORMAT",
    "CheckpointError",
    "check_tensors",
    "load_checkpoint",
    "load_potential",
    "load_weights",
    "save_checkpoint",
]

FORMAT = "geocompose.checkpoint/1"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class CheckpointError(GeocomposeError):
    """A checkpoint that is missing, unreadable, or not a geocompose checkpoint."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, then ``os.replace``)."""
    state = {"format": FORMAT, **state}
    return atomic_write(path, lambda handle: torch.save(state, handle))


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


def check_tensors(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, Any], where: str
) -> None:
    """Refuse ``found`` unless it holds a tensor of the right shape for every name.

    Args:
        expected: name -> tensor of the model being loaded into.
        found: name -> tensor read from a checkpoint.
        where: what ``found`` is, for the message (``"runs/cu/last.pt: weights"``).

    Raises:
        CheckpointError: a missing, unexpected, non-tensor or differently shaped entry,
            naming the first one.
    """
    missing = [name for name in expected if name not in found]
    if missing:
        raise CheckpointError(
            f"{where}: no tensor '{missing[0]}' ({len(missing)} missing); "
            "the checkpoint was written for another blueprint"
        )
    extra = [name for name in found if name not in expected]
    if extra:
        raise CheckpointError(
            f"{where}: tensor '{extra[0]}' is not in the model ({len(extra)} unexpected); "
            "the checkpoint was written for another blueprint"
        )
    for name, target in expected.items():
        value = found[name]
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{where}: '{name}' is a {type(value).__name__}, not a tensor")
        if value.shape != target.shape:
            raise CheckpointError(
                f"{where}: tensor '{name}' has shape {tuple(value.shape)}, "
                f"the blueprint builds {tuple(target.shape)}"
            )


def load_weights(module: nn.Module, weights: Mapping[str, Any], where: str) -> None:
    """``module.load_state_dict(weights)`` after :func:`check_tensors` (one-line errors
    instead of torch's multi-line RuntimeError)."""
    check_tensors(module.state_dict(), weights, where)
    # Loaded into a wider dtype than saved, the build's constants keep their exact values.
    module.load_state_dict(exact_state(module, weights))


def build_potential(
    state: dict[str, Any], averaged: bool = True, where: str = "checkpoint"
) -> Potential:
    """The Potential a checkpoint describes, in eval mode.

    Args:
        state: a loaded checkpoint.
        averaged: use the EMA weights when the checkpoint has them.
        where: the checkpoint's name in error messages (usually its path).

    Raises:
        CheckpointError: weights or averages that do not fit the embedded blueprint.
    """
    dtype = DTYPES[state["dtype"]]
    model = compile_blueprint(state["blueprint"], dtype=dtype)
    weights = state["weights"]
    for name in ("reference", "scale"):
        if not isinstance(weights.get(name), torch.Tensor):
            raise CheckpointError(f"{where}: weights: no tensor '{name}'")
    potential = Potential(model, reference=weights["reference"], scale=float(weights["scale"]))
    load_weights(potential, weights, f"{where}: weights")
    if averaged and state.get("ema") is not None:
        shadow = state["ema"]["shadow"]
        check_tensors(dict(potential.named_parameters()), shadow, f"{where}: averaged weights")
        with torch.no_grad():
            for name, p in potential.named_parameters():
                p.copy_(shadow[name])
    return potential.eval()


def load_potential(path: str | Path, averaged: bool = True) -> Potential:
    """Load a trained :class:`Potential` from a checkpoint file (eval mode)."""
    return build_potential(load_checkpoint(path), averaged, where=str(path))
