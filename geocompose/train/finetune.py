"""Fine-tuning: start a run from a checkpoint's trained weights, optionally with some
blocks frozen.

Rules (``geocompose train --init CHECKPOINT [--freeze NAME ...]``):

* The starting point is the checkpoint's *averaged* weights (what ``best.pt`` holds and
  ``evaluate`` uses), its reference energies and its energy scale, so the run starts from
  exactly the trained potential: the network's outputs are in that scale's units, and a
  new scale would change the function being fine-tuned.
* The blueprint must have the checkpoint's species, in its order. A species the
  checkpoint lacks is refused by name (its per-species weights and reference energy
  would be untrained guesses), and so is one it has that the blueprint dropped.
* Every weight must exist in both with the same shape (the same architecture); the
  first one that does not is named.
* ``--freeze NAME`` stops training every block whose blueprint path (as ``geocompose
  info`` prints it: ``embedding.node``, ``interactions[0]#1``, ``readout.energy``) is
  ``NAME`` or starts with it: ``interactions`` freezes all interactions,
  ``interactions[0]`` both repeats of the first entry, ``interactions[0]#2`` the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from geocompose.train.checkpoint import CheckpointError, build_potential, load_checkpoint

__all__ = ["block_paths", "freeze_blocks", "load_initial_weights"]


def load_initial_weights(potential: nn.Module, path: str | Path) -> dict:
    """Copy the averaged weights, reference energies and scale of the checkpoint at
    ``path`` into ``potential``; returns the checkpoint.

    Raises:
        CheckpointError: unreadable checkpoint, other species, or another architecture.
    """
    state = load_checkpoint(path)
    have, want = list(state["species"]), list(potential.species)
    if have != want:
        lacking = [s for s in want if s not in have]
        dropped = [s for s in have if s not in want]
        why = (
            f"it lacks {', '.join(lacking)} (their per-species weights would be untrained)"
            if lacking
            else f"the blueprint drops {', '.join(dropped)}"
            if dropped
            else "they are in another order"
        )
        raise CheckpointError(
            f"--init {path}: the checkpoint was trained on species [{', '.join(have)}], "
            f"the blueprint has [{', '.join(want)}]: {why}; give the blueprint the "
            "checkpoint's species list"
        )
    source = build_potential(state, averaged=True).state_dict()
    target = potential.state_dict()
    for name, value in target.items():
        if name not in source or source[name].shape != value.shape:
            found = "missing" if name not in source else f"shape {tuple(source[name].shape)}"
            raise CheckpointError(
                f"--init {path}: weight `{name}` is {tuple(value.shape)} in this blueprint and "
                f"{found} in the checkpoint's ({state['blueprint'].get('name')}); fine-tuning "
                "needs the same architecture"
            )
    extra = sorted(set(source) - set(target))
    if extra:
        raise CheckpointError(
            f"--init {path}: the checkpoint has weights this blueprint lacks "
            f"(first: `{extra[0]}`); fine-tuning needs the same architecture"
        )
    potential.load_state_dict(source)
    return state


def block_paths(model) -> list[tuple[str, nn.Module]]:
    """(blueprint path, block) for every block of a compiled model, in pipeline order."""
    rows = model.trace.rows
    if len(rows) != len(model.blocks):  # the compiler builds one block per trace row
        raise RuntimeError(f"trace has {len(rows)} rows for {len(model.blocks)} blocks")
    return [(row.knob, block) for row, block in zip(rows, model.blocks)]


def _matches(path: str, name: str) -> bool:
    return path == name or (path.startswith(name) and path[len(name)] in ".[#")


def freeze_blocks(model, names: Sequence[str]) -> list[str]:
    """Turn off gradients of every block a name selects; returns the frozen paths.

    Raises:
        CheckpointError: a name that selects no block with weights (the available
            paths are listed).
    """
    paths = block_paths(model)
    frozen: list[str] = []
    for name in names:
        chosen = [(p, b) for p, b in paths if _matches(p, name) and any(True for _ in b.parameters())]
        if not chosen:
            available = ", ".join(p for p, b in paths if any(True for _ in b.parameters()))
            raise CheckpointError(
                f"--freeze {name}: no block with weights has that path; blocks with weights: {available}"
            )
        for path, block in chosen:
            block.requires_grad_(False)
            if path not in frozen:
                frozen.append(path)
    return frozen
