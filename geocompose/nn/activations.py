"""Activations and the small MLP every family uses for invariant channels."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

Activation = Literal["ssp", "silu", "tanh"]


class ShiftedSoftplus(nn.Module):
    """``ln(1 + e^x) - ln 2``: SchNet's activation, zero at zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(x) - math.log(2.0)


def activation(name: Activation) -> nn.Module:
    return {"ssp": ShiftedSoftplus, "silu": nn.SiLU, "tanh": nn.Tanh}[name]()


def mlp(sizes: Sequence[int], act: Activation, *, bias_last: bool = True) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``act`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        layers.append(nn.Linear(a, b, bias=bias_last or not last))
        if not last:
            layers.append(activation(act))
    return nn.Sequential(*layers)
