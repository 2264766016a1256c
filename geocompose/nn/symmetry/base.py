"""What symmetry strategies share: the protocol and averaging over frames.

A strategy wraps the model's inner pipeline (graph → embeddings → interactions →
non-derivative readouts). It receives ``run(state) -> outputs`` and returns outputs;
derivative readouts (forces) come after it, so forces are the gradient of the
*symmetrised* energy and stay conservative.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from geocompose.registry import KnobModel
from geocompose.types import FieldType, Level
from geocompose.types import fields as F
from geocompose.types.group import Group
from geocompose.types.irreps import rotate_rows

Run = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


class Strategy(nn.Module):
    """Base of strategies. ``derive`` tells the compiler what the model may claim."""

    Params: type[KnobModel]

    def __init__(self, params: KnobModel, claim: Group):
        super().__init__()
        self.params = params
        self.claim = claim

    @classmethod
    def derive(cls, params, blocks: Group, claim: Group) -> tuple[Group, bool]:
        """(guaranteed group, whether it is exact) given the blocks' guarantee."""
        return blocks, True

    def forward(self, run: Run, state: dict, types: Mapping[str, FieldType], graph) -> dict:
        return run(state)


def average_over_frames(
    run: Run,
    state: dict[str, torch.Tensor],
    types: Mapping[str, FieldType],
    frames: torch.Tensor,
    centroid: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Average outputs of ``run`` over frames, each mapped back by its output's irreps.

    Frame k of structure b is an orthogonal Q (``frames[b, k]``, columns = axes). The
    network sees ``x' = Q^T (x - c)`` and cell rows ``a' = Q^T a``; an output y' comes
    back as ``D(Q) y'`` (plus c for position-like outputs). Since Q -> R Q when x -> R x,
    the average is exactly equivariant whatever the network does.

    Args:
        frames: (B, K, 3, 3).
        centroid: (B, 3).
        weights: (B, K) non-negative invariant weights (uniform when None); a row of
            zeros leaves that structure's outputs at zero.
    """
    batch = state[F.BATCH]
    positions = state[F.POSITIONS]
    num_structures = state[F.CELL].shape[0]
    if weights is None:
        weights = torch.ones(frames.shape[:2], dtype=positions.dtype, device=positions.device)
    weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=torch.finfo(weights.dtype).tiny)
    total: dict[str, torch.Tensor] = {}
    for k in range(frames.shape[1]):
        q = frames[:, k]  # (B, 3, 3)
        local = torch.einsum("ni,nij->nj", positions - centroid[batch], q[batch])
        moved = {**state, F.POSITIONS: local, F.CELL: state[F.CELL] @ q}
        for name, value in run(moved).items():
            ftype = types[name]
            rows = (
                batch
                if ftype.level is Level.NODE
                else torch.arange(num_structures, device=value.device)
            )
            if ftype.irreps is not None:
                value = rotate_rows(value, ftype.irreps, q, rows)
                if ftype.translates:
                    value = value + centroid[batch]
            value = value * weights[rows, k].view(-1, *([1] * (value.dim() - 1))).to(value.dtype)
            total[name] = total[name] + value if name in total else value
    return total
