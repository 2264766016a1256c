"""Exponential moving average of weights (Polyak averaging).

    theta_ema <- d theta_ema + (1 - d) theta,   d = min(decay, (1 + t) / (10 + t))

after every optimiser step t; the warm-up ``(1 + t) / (10 + t)`` keeps the average from
being dominated by the random initial weights during the first steps. Validation,
early stopping and the saved "best" model use the averaged weights, which are usually
smoother and more accurate than the last step's.

A small class of our own rather than ``torch.optim.swa_utils.AveragedModel``: it keeps
only the shadow tensors (no deep copy of the module and its compiled trace) and its
state dict is plain tensors, as ``torch.load(weights_only=True)`` requires.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Shadow copies of a module's floating-point parameters.

    Args:
        module: the module whose parameters are averaged.
        decay: the asymptotic decay ``d`` in [0, 1).
    """

    def __init__(self, module: nn.Module, decay: float = 0.99):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1); got {decay}")
        self.decay = decay
        self.steps = 0
        self.shadow = {name: p.detach().clone() for name, p in module.named_parameters()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Fold the module's current parameters into the average."""
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        params = dict(module.named_parameters())
        if params:  # one multi-tensor op, not one lerp per parameter (a fixed cost per step)
            shadows = [self.shadow[name] for name in params]
            torch._foreach_lerp_(shadows, [p.detach() for p in params.values()], 1.0 - d)

    @contextmanager
    def applied(self, module: nn.Module) -> Iterator[nn.Module]:
        """Temporarily load the averaged parameters into ``module``."""
        saved = {name: p.detach().clone() for name, p in module.named_parameters()}
        self.copy_to(module)
        try:
            yield module
        finally:
            with torch.no_grad():
                for name, p in module.named_parameters():
                    p.copy_(saved[name])

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Overwrite ``module``'s parameters with the averages."""
        for name, p in module.named_parameters():
            p.copy_(self.shadow[name])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "steps": self.steps, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.steps = int(state["steps"])
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
