"""What every interaction block shares: ``repeat`` and the message-passing loop.

An interaction computes per-edge messages (``message``), the one primitive in
``nn.ops.message`` aggregates them, and ``update`` turns the aggregate into the fields
the block writes. Every sum over neighbours goes through the primitives of ``nn.ops``
(``aggregate`` onto atoms, ``scatter_sum`` onto edges); DimeNet++ and GemNet, whose
layers interleave edge updates, triplet/quadruplet sums onto edges and an atom update,
write their own ``forward`` around those primitives instead of ``message``/``update``.
"""

from __future__ import annotations

import torch
from pydantic import Field

from geocompose.nn.block import Block, State
from geocompose.nn.ops.message import EdgeView, aggregate
from geocompose.registry import KnobModel
from geocompose.types import fields as F


class InteractionParams(KnobModel):
    """Params every interaction has."""

    # That many copies in a row, each with its own weights.
    # Its own bound (the shared Size would override `le` with 4096): 64 copies of a block.
    repeat: int = Field(default=1, gt=0, le=64)

    def copy_params(self, copy: int) -> InteractionParams:
        """The params of copy ``copy`` (0-based) of this entry: these, unless a block's
        params say how one copy differs (:class:`~geocompose.nn.interaction.spherical.
        SphericalParams` ``last_writes_scalars``)."""
        return self


class MessagePassingInteraction(Block):
    """An interaction written as message → aggregate → update."""

    reduce = "sum"
    edge_index_field = F.EDGE_INDEX  # which edge set the messages travel on

    def message(self, state: State, edges: EdgeView) -> torch.Tensor:
        """(E, ...) per-edge messages from sender j to receiver i."""
        raise NotImplementedError

    def update(self, state: State, aggregated: torch.Tensor) -> dict[str, torch.Tensor]:
        """New values of the fields this block writes."""
        raise NotImplementedError

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        edges = EdgeView.from_state(state, self.edge_index_field)
        return self.update(state, aggregate(self.message(state, edges), edges, self.reduce))
