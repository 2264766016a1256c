"""The edge embedding stage: radial basis, envelope and (optionally) spherical harmonics.

Not a knob itself: it is assembled from the ``radial``, ``envelope`` and ``angular``
knobs of the blueprint's ``embedding`` section, once per model, so every interaction
reads the same bases (never recomputed per layer).
"""

from __future__ import annotations

import torch
from e3nn import o3
from pydantic import Field

from geocompose.nn.block import Block, BuildContext, State
from geocompose.registry import KnobModel
from geocompose.types import FieldType, Level, Signature, TypeRefusal, require, scalars
from geocompose.types import fields as F
from geocompose.types.group import Group


class AngularParams(KnobModel):
    """Spherical harmonics of edge directions up to ``l_max`` (e3nn, component-normalised)."""

    l_max: int = Field(ge=0, le=8)


def angular_irreps(l_max: int) -> o3.Irreps:
    """``1x0e + 1x1o + 1x2e + ...``: harmonics of a polar vector have parity (-1)^l."""
    return o3.Irreps.spherical_harmonics(l_max)


class EdgeEmbedding(Block):
    """Writes ``edge_radial`` (num x 0e), ``edge_envelope`` (1x0e) and, with
    ``angular``, ``edge_angular`` (spherical harmonics of the unit edge vector)."""

    def __init__(
        self,
        radial: torch.nn.Module,
        envelope: torch.nn.Module,
        angular: AngularParams | None,
        upstream,
        ctx: BuildContext,
    ):
        self.radial_num = radial.num
        self.l_max = angular.l_max if angular is not None else None
        super().__init__(angular or AngularParams(l_max=0), upstream, ctx)
        self.radial = radial
        self.envelope = envelope

    def signature(self, params, upstream, ctx):  # instance-level: depends on the components
        return self.edge_signature(self.radial_num, self.l_max, upstream)

    @staticmethod
    def edge_signature(radial_num: int, l_max: int | None, upstream) -> Signature | TypeRefusal:
        reads = {}
        for name in (F.EDGE_LENGTHS,) + ((F.EDGE_VECTORS,) if l_max is not None else ()):
            found = require(upstream, name, "the edge embedding")
            if isinstance(found, TypeRefusal):
                return found
            reads[name] = found
        writes = {
            F.EDGE_RADIAL: scalars(radial_num, Level.EDGE),
            F.EDGE_ENVELOPE: scalars(1, Level.EDGE),
        }
        if l_max is not None:
            writes[F.EDGE_ANGULAR] = FieldType(angular_irreps(l_max), Level.EDGE)
        return Signature(reads=reads, writes=writes, guarantee=Group.O3)

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        lengths = state[F.EDGE_LENGTHS]  # (E, 1)
        out = {F.EDGE_RADIAL: self.radial(lengths), F.EDGE_ENVELOPE: self.envelope(lengths)}
        if self.l_max is not None:
            # Divide by a clamped length: a zero vector (coincident atoms) gets harmonics of
            # the zero vector (finite) instead of 0/0.
            unit = state[F.EDGE_VECTORS] / lengths.clamp(min=1e-12)
            out[F.EDGE_ANGULAR] = o3.spherical_harmonics(
                list(range(self.l_max + 1)), unit, normalize=False, normalization="component"
            )
        return out
