"""Angular bases: expand an edge direction into irreps channels."""

from __future__ import annotations

from typing import Literal

import torch
from e3nn import o3
from pydantic import Field

from geocompose.nn.block import Block, BuildContext, State
from geocompose.registry import Kind, KnobModel, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal
from geocompose.types import fields as F
from geocompose.types.group import Group
from geocompose.types.signature import require_all


def angular_irreps(l_max: int) -> o3.Irreps:
    """``1x0e + 1x1o + 1x2e + ...``: harmonics of a polar vector have parity (-1)^l."""
    return o3.Irreps.spherical_harmonics(l_max)


class SphericalHarmonicsParams(KnobModel):
    type: Literal["spherical_harmonics"] = "spherical_harmonics"
    l_max: int = Field(ge=0, le=8, examples=[1, 2], description="highest degree l")


@register(Kind.ANGULAR)
class SphericalHarmonics(Block):
    """Real spherical harmonics of the unit edge vector up to ``l_max`` (e3nn,
    component-normalised), the angular basis of TFN, NequIP and MACE.

    Signature: reads ``edge_vectors: 1o``, ``edge_lengths: 0e`` → writes
    ``edge_angular: 1x0e + 1x1o + ... + 1x(l_max)``, parity ``(-1)^l``.

    YAML: ``angular: {l_max: 2}`` (the ``type`` may be left out: this is the default)
    """

    Params = SphericalHarmonicsParams

    @classmethod
    def label(cls, params: SphericalHarmonicsParams) -> str:
        return f"Y(l<={params.l_max})"

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext) -> Signature | TypeRefusal:
        reads = require_all(upstream, (F.EDGE_LENGTHS, F.EDGE_VECTORS), "the angular basis")
        if isinstance(reads, TypeRefusal):
            return reads
        return Signature(
            reads=reads,
            writes={F.EDGE_ANGULAR: FieldType(angular_irreps(params.l_max), Level.EDGE)},
            guarantee=Group.O3,
        )

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        # Divide by a clamped length: a zero vector (coincident atoms) gets harmonics of
        # the zero vector (finite) instead of 0/0.
        unit = state[F.EDGE_VECTORS] / state[F.EDGE_LENGTHS].clamp(min=1e-12)
        harmonics = o3.spherical_harmonics(
            list(range(self.params.l_max + 1)), unit, normalize=False, normalization="component"
        )
        return {F.EDGE_ANGULAR: harmonics}
