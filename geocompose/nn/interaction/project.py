"""Projections between feature types: where a block needs fewer irreps than it is given."""

from __future__ import annotations

from typing import Literal

import torch

from geocompose.nn.block import Block, BuildContext, State
from geocompose.nn.interaction.base import InteractionParams
from geocompose.registry import Family, Group, Kind, register
from geocompose.types import FieldType, Level, TypeRefusal, require
from geocompose.types import fields as F
from geocompose.types.irreps import scalar_part
from geocompose.types.signature import Signature


class ScalarsParams(InteractionParams):
    type: Literal["scalars"] = "scalars"


@register(Kind.INTERACTION, family=Family.COMPONENT, group=Group.O3)
class ScalarProjection(Block):
    """Keeps only the invariant (``0e``) channels of ``node_features``.

    ``h_i <- P h_i`` where ``P`` selects the ``0e`` blocks (in order) and drops every other
    irrep: vectors ``1o``, pseudo-vectors ``1e``, ``2e``, ... . The selected channels are
    invariant under O(3), so an invariant block can follow an equivariant one::

        painn -> scalars -> schnet     accepted: schnet reads Fx0e
        painn -> schnet                refused:  schnet reads node_features as 0e only

    No weights, no geometry; idempotent (``repeat`` is allowed but changes nothing).

    Signature: reads ``node_features`` with at least one ``0e`` channel → writes
    ``node_features: Fx0e`` (F = its number of ``0e`` channels).

    YAML: ``{type: scalars}``
    """

    Params = ScalarsParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        found = require(upstream, F.NODE_FEATURES, "scalars")
        if isinstance(found, TypeRefusal):
            return found
        invariant = scalar_part(found.irreps)
        if invariant.dim == 0:
            return TypeRefusal(
                f"scalars keeps the 0e channels of {F.NODE_FEATURES}, but upstream gives {found.irreps} with none",
                "keep some 0e channels in the previous block",
            )
        writes = {F.NODE_FEATURES: FieldType(invariant, Level.NODE)}
        return Signature(reads={F.NODE_FEATURES: found}, writes=writes, guarantee=Group.O3)

    def __init__(self, params: ScalarsParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        irreps = self.irreps_in[F.NODE_FEATURES]
        index = [
            i
            for sl, (_, ir) in zip(irreps.slices(), irreps)
            if ir.l == 0 and ir.p == 1
            for i in range(sl.start, sl.stop)
        ]
        self.register_buffer("index", torch.tensor(index, dtype=torch.long), persistent=False)

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        return {F.NODE_FEATURES: state[F.NODE_FEATURES].index_select(-1, self.index)}
