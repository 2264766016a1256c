"""What symmetry strategies share: the protocol and averaging over frames.

A strategy wraps the model's inner pipeline (graph → embeddings → interactions →
non-derivative readouts). It receives ``run(state) -> outputs`` and returns outputs;
derivative readouts (forces) come after it, so forces are the gradient of the
*symmetrised* energy and stay conservative.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from geocompose.nn.block import Block, BuildContext
from geocompose.types import FieldType, FieldTypes, Level, Signature, TypeRefusal
from geocompose.types import fields as F
from geocompose.types.group import Group
from geocompose.types.irreps import rotate_rows
from geocompose.types.signature import require_all

Run = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]

FRAME_READS = (F.POSITIONS, F.CELL, F.BATCH, F.EDGE_INDEX, F.EDGE_VECTORS)
"""What a strategy building frames from the geometry reads (edge vectors from the graph)."""


@dataclass(frozen=True, kw_only=True)
class StrategyContext(BuildContext):
    """A strategy's build context: the claim it serves and what it wraps.

    Args:
        claim: the group the blueprint claims.
        wrapped: the guarantee of the blocks it wraps (the weakest of theirs).
    """

    claim: Group
    wrapped: Group


class Strategy(Block):
    """Base of strategies: the block protocol, with a ``forward`` that wraps the pipeline.

    Its typing rule reads what the strategy needs from the model's fields and gives
    the model's guarantee as a function of the claim and of the wrapped blocks'
    guarantee (``Signature.exact`` False where that guarantee is only approximate);
    it writes no field of its own. This base passes the wrapped guarantee through.
    """

    needs: ClassVar[tuple[str, ...]] = ()
    """Fields the strategy reads from the state it wraps."""

    @classmethod
    def signature(
        cls, params, upstream: FieldTypes, ctx: StrategyContext
    ) -> Signature | TypeRefusal:
        return cls.wrapping(params, upstream, ctx.wrapped)

    @classmethod
    def wrapping(
        cls, params, upstream: FieldTypes, group: Group, exact: bool = True
    ) -> Signature | TypeRefusal:
        """The signature of a strategy that reads ``needs`` and guarantees ``group``."""
        reads = require_all(upstream, cls.needs, f"the '{params.type}' strategy")
        if isinstance(reads, TypeRefusal):
            return reads
        return Signature(reads=reads, writes={}, guarantee=group, exact=exact)

    def __init__(self, params, upstream: FieldTypes, ctx: StrategyContext):
        super().__init__(params, upstream, ctx)
        self.claim = ctx.claim

    def forward(self, run: Run, state: dict, types: Mapping[str, FieldType], graph) -> dict:
        return run(state)

    def extra_repr(self) -> str:
        return ""  # no fields of its own; the trace summary states the guarantee


class Penalised:
    """Mixin of a module that adds a term to the training loss: its training forward
    records the term, and the loss (:class:`geocompose.train.loss.Objective`) takes it."""

    penalty_name: ClassVar[str]
    """The term's name in the loss's logged parts."""
    penalty_weight: float = 0.0
    penalty: torch.Tensor | None = None

    def take_penalty(self) -> torch.Tensor | None:
        """The term of the latest training forward, once (then cleared)."""
        term, self.penalty = self.penalty, None
        return term


class FramedStrategy(Strategy):
    """Base of strategies that build frames from the geometry: they read
    :data:`FRAME_READS` and guarantee the claim (:func:`framed_group`), exactly."""

    needs = FRAME_READS

    @classmethod
    def signature(cls, params, upstream, ctx: StrategyContext):
        return cls.wrapping(params, upstream, framed_group(ctx))


def framed_group(ctx: StrategyContext) -> Group:
    """What averaging over (or choosing) frames guarantees: the claim, whatever the
    wrapped blocks do; with no claim, just what the blocks give."""
    return ctx.claim if ctx.claim is not Group.NONE else ctx.wrapped


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
