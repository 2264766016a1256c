"""Radius-cutoff graph on vesin's neighbour list: molecules and any periodic cell,
optionally with a second, long-range edge set kept beside the local one."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from geocompose.nn.block import BuildContext, State
from geocompose.nn.graph.base import GraphBuilder, GraphParams, safe_norm
from geocompose.nn.graph.neighbours import edge_vectors, radius_pairs
from geocompose.registry import Kind, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal, discrete, scalars
from geocompose.types import fields as F
from geocompose.types.bounds import Cutoff
from geocompose.types.irreps import parse_irreps

LONG_RANGE = {
    F.EDGE_INDEX: F.LONG_RANGE_EDGE_INDEX,
    F.EDGE_SHIFTS: F.LONG_RANGE_EDGE_SHIFTS,
    F.EDGE_VECTORS: F.LONG_RANGE_EDGE_VECTORS,
    F.EDGE_LENGTHS: F.LONG_RANGE_EDGE_LENGTHS,
}
"""Local edge field → its long-range counterpart."""


class RadiusGraphParams(GraphParams):
    type: Literal["radius"] = "radius"
    long_range_cutoff: Cutoff | None = Field(
        default=None,
        description="also build a second edge set up to this radius (Å), e.g. for a "
        "'long_range' interaction; must exceed cutoff",
        examples=[6.0, 8.0],
    )


@register(Kind.GRAPH, periodic=True, smooth=True)
class RadiusGraph(GraphBuilder):
    """Every pair closer than ``cutoff``, over all periodic images.

    Handles periodic, partially periodic and open boundaries, triclinic cells and
    cutoffs larger than the cell (many images of one atom). Pairs come from ``vesin``
    (31 ms for 10,000 Cu atoms at 5 Å on this project's 2-core machine). With
    ``long_range_cutoff`` it also writes ``long_range_edge_*`` fields: all pairs up to
    that larger radius, as their own edge set (local blocks keep the short one).

    YAML: ``graph: {type: radius, cutoff: 5.0, long_range_cutoff: 10.0}``
    """

    Params = RadiusGraphParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        sig = super().signature(params, upstream, ctx)
        if isinstance(sig, TypeRefusal) or params.long_range_cutoff is None:
            return sig
        if params.long_range_cutoff <= params.cutoff:
            return TypeRefusal(
                f"long_range_cutoff ({params.long_range_cutoff}) must exceed cutoff ({params.cutoff})",
                "raise long_range_cutoff or drop it",
            )
        writes = dict(sig.writes)
        writes[F.LONG_RANGE_EDGE_INDEX] = discrete(Level.EDGE)
        writes[F.LONG_RANGE_EDGE_SHIFTS] = discrete(Level.EDGE)
        writes[F.LONG_RANGE_EDGE_VECTORS] = FieldType(parse_irreps("1o"), Level.EDGE)
        writes[F.LONG_RANGE_EDGE_LENGTHS] = scalars(1, Level.EDGE)
        return Signature(reads=sig.reads, writes=writes, guarantee=sig.guarantee)

    @classmethod
    def reach(cls, params) -> float:
        return float(max(params.cutoff, params.long_range_cutoff or 0.0))

    def pairs(self, positions, cell, pbc):
        return radius_pairs(positions, cell, pbc, self.params.cutoff)

    def topology(self, batch) -> dict[str, torch.Tensor]:
        local = super().topology(batch)
        if self.params.long_range_cutoff is None:
            return local
        cutoff = self.params.long_range_cutoff
        far = batch.cached(
            ("long_range", cutoff),
            lambda: self._topology(batch, lambda p, c, b: radius_pairs(p, c, b, cutoff)),
        )
        return {**local, **{LONG_RANGE[name]: value for name, value in far.items()}}

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        out = super().forward(state)
        if self.params.long_range_cutoff is not None:
            senders, receivers = state[F.LONG_RANGE_EDGE_INDEX]
            vectors = edge_vectors(
                state[F.POSITIONS],
                state[F.CELL][state[F.BATCH][receivers]],
                receivers,
                senders,
                state[F.LONG_RANGE_EDGE_SHIFTS],
            )
            out[F.LONG_RANGE_EDGE_INDEX] = state[F.LONG_RANGE_EDGE_INDEX]
            out[F.LONG_RANGE_EDGE_SHIFTS] = state[F.LONG_RANGE_EDGE_SHIFTS]
            out[F.LONG_RANGE_EDGE_VECTORS] = vectors
            out[F.LONG_RANGE_EDGE_LENGTHS] = safe_norm(vectors)
        return out
