"""Complete graph: every ordered pair of atoms of a molecule."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import Field

from geocompose.errors import StructureError
from geocompose.nn.graph.base import GraphBuilder, GraphParams
from geocompose.nn.graph.neighbours import complete_pairs
from geocompose.registry import Kind, register
from geocompose.types import Signature
from geocompose.types.bounds import Cutoff


class CompleteGraphParams(GraphParams):
    type: Literal["complete"] = "complete"
    cutoff: Cutoff = Field(
        default=10.0,
        description="range of the radial basis and envelope (Å); pairs are never dropped",
    )


@register(Kind.GRAPH, periodic=False, smooth=True)
class CompleteGraph(GraphBuilder):
    """All pairs i != j of each structure (EGNN on small molecules). Open boundaries only:
    a periodic cell has no finite complete graph, so it is refused.

    YAML: ``graph: {type: complete}``
    """

    Params = CompleteGraphParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        sig = super().signature(params, upstream, ctx)
        if not isinstance(sig, Signature):
            return sig
        # Pairs at any distance: an atom far away still changes every other atom.
        return dataclasses.replace(sig, extensive=False)

    def pairs(self, positions, cell, pbc):
        if pbc.any():
            raise StructureError(
                "the 'complete' graph builder takes molecules only; this structure is "
                "periodic — use graph type 'radius' for periodic cells"
            )
        return complete_pairs(len(positions))
