"""A long-range invariant interaction on the graph's second (long-range) edge set."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from geocompose.nn.activations import Activation, mlp
from geocompose.nn.block import BuildContext, State
from geocompose.nn.interaction.base import InteractionParams, MessagePassingInteraction
from geocompose.nn.ops.message import EdgeView
from geocompose.registry import Family, Group, Kind, register
from geocompose.types import Signature, TypeRefusal
from geocompose.types import fields as F
from geocompose.types.bounds import Size
from geocompose.types.signature import require_all, require_scalar


class LongRangeParams(InteractionParams):
    type: Literal["long_range"] = "long_range"
    filters: Size = 16
    width: float = Field(
        default=1.0, gt=0.0, allow_inf_nan=False, description="Gaussian charge width σ (Å)"
    )
    activation: Activation = "silu"


@register(Kind.INTERACTION, family=Family.INVARIANT, body_order=2, group=Group.O3)
class LongRangeInteraction(MessagePassingInteraction):
    """Screened-Coulomb-like messages over the long-range edge set.

    ``h_i <- h_i + W_out( sum_j W_in(h_j) * k(r_ij) )`` with the kernel
    ``k(r) = erf(r / (sqrt(2) sigma)) / r * (cos(pi r / R) + 1) / 2``: the potential of
    Gaussian charges of width sigma (finite as r -> 0) switched smoothly to zero at the
    long-range cutoff R. Learned per-channel ``W_in`` plays the role of partial charges.
    Needs ``graph: {type: radius, long_range_cutoff: R}``.

    YAML: ``{type: long_range, filters: 16, width: 1.0}``
    """

    Params = LongRangeParams
    edge_index_field = F.LONG_RANGE_EDGE_INDEX  # message passing over the long-range edges

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        names = (F.NODE_FEATURES, F.LONG_RANGE_EDGE_INDEX, F.LONG_RANGE_EDGE_LENGTHS)
        reads = require_all(upstream, names, "long_range")
        if isinstance(reads, TypeRefusal):
            return TypeRefusal(
                reads.message, "set graph.long_range_cutoff to build a long-range edge set"
            )
        hint = "put it before equivariant blocks, or project to scalars first"
        refusal = require_scalar(reads, F.NODE_FEATURES, "long_range", hint)
        if refusal is not None:
            return refusal
        return Signature(
            reads=reads, writes={F.NODE_FEATURES: reads[F.NODE_FEATURES]}, guarantee=Group.O3
        )

    def __init__(self, params: LongRangeParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        hidden = self.irreps_in[F.NODE_FEATURES].dim
        self.node_in = nn.Linear(hidden, params.filters, bias=False)
        self.node_out = mlp([params.filters, hidden, hidden], params.activation)
        self.width = params.width
        self.range = ctx.long_range_cutoff

    def message(self, state: State, edges: EdgeView) -> torch.Tensor:
        r = state[F.LONG_RANGE_EDGE_LENGTHS]  # (L, 1)
        scaled = self.width * math.sqrt(2.0)
        # erf(r/a)/r written as (2/(a sqrt(pi))) at r = 0, its limit, to stay finite.
        safe_r = torch.where(r > 1e-9, r, torch.ones_like(r))
        limit = torch.full_like(r, 2.0 / (scaled * math.sqrt(math.pi)))
        screened = torch.where(r > 1e-9, torch.erf(r / scaled) / safe_r, limit)
        switch = torch.where(
            r < self.range, 0.5 * (torch.cos(r * (math.pi / self.range)) + 1.0), 0.0
        )
        return edges.gather_senders(self.node_in(state[F.NODE_FEATURES])) * (screened * switch)

    def update(self, state: State, aggregated: torch.Tensor) -> dict[str, torch.Tensor]:
        return {F.NODE_FEATURES: state[F.NODE_FEATURES] + self.node_out(aggregated)}
