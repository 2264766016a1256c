"""What radial bases and envelopes share: one edge-length field in, one field out.

Both are functions of the edge length alone, scaled to the graph's cutoff
(``ctx.cutoff``), so they are invariant under every group element by construction;
a subclass defines :meth:`of_lengths` and its params.
"""

from __future__ import annotations

import torch

from geocompose.nn.block import Block, BuildContext, State
from geocompose.types import Level, Signature, TypeRefusal, require, scalars
from geocompose.types import fields as F
from geocompose.types.group import Group


def length_signature(upstream, writes: str, channels: int, reader: str) -> Signature | TypeRefusal:
    """``edge_lengths`` in, ``channels x 0e`` edge channels out under the name ``writes``."""
    found = require(upstream, F.EDGE_LENGTHS, reader)
    if isinstance(found, TypeRefusal):
        return found
    return Signature(
        reads={F.EDGE_LENGTHS: found},
        writes={writes: scalars(channels, Level.EDGE)},
        guarantee=Group.O3,
    )


class LengthFunction(Block):
    """Base of radial bases and envelopes: ``forward`` evaluates :meth:`of_lengths`."""

    writes: str  # the one field it writes

    def __init__(self, params, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        self.cutoff = ctx.cutoff

    def of_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(E, 1) edge lengths → (E, channels) values."""
        raise NotImplementedError

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        return {self.writes: self.of_lengths(state[F.EDGE_LENGTHS])}


class RadialBasis(LengthFunction):
    """Base of radial bases: writes ``edge_radial`` as ``num x 0e`` (params need ``num``)."""

    writes = F.EDGE_RADIAL

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext) -> Signature | TypeRefusal:
        return length_signature(
            upstream, F.EDGE_RADIAL, params.num, f"the '{params.type}' radial basis"
        )


class Envelope(LengthFunction):
    """Base of envelopes: writes ``edge_envelope`` as ``1x0e``. One registered
    ``smooth=True`` must reach zero smoothly at the cutoff (the verifier checks)."""

    writes = F.EDGE_ENVELOPE

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext) -> Signature | TypeRefusal:
        return length_signature(upstream, F.EDGE_ENVELOPE, 1, f"the '{params.type}' envelope")
