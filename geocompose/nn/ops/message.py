"""The one message-passing primitive (PyG's message / aggregate / update split).

Every interaction block, whatever its family, computes per-edge messages and hands
them here; aggregation onto receivers happens in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geocompose.nn.ops.scatter import scatter_mean, scatter_sum
from geocompose.types import fields as F


@dataclass(frozen=True)
class EdgeView:
    """Edges of the current graph, with helpers to gather node rows onto them.

    Args:
        senders: (E,) index of the sending atom j.
        receivers: (E,) index of the receiving atom i.
        num_nodes: N, so aggregation sizes its output even for atoms without edges.
    """

    senders: torch.Tensor
    receivers: torch.Tensor
    num_nodes: int

    @classmethod
    def from_state(cls, state, index_field: str = F.EDGE_INDEX) -> EdgeView:
        edge_index = state[index_field]
        return cls(edge_index[0], edge_index[1], state[F.POSITIONS].shape[0])

    def gather_senders(self, node_rows: torch.Tensor) -> torch.Tensor:
        """(N, ...) → (E, ...) rows of each edge's sender."""
        return node_rows.index_select(0, self.senders)

    def gather_receivers(self, node_rows: torch.Tensor) -> torch.Tensor:
        """(N, ...) → (E, ...) rows of each edge's receiver."""
        return node_rows.index_select(0, self.receivers)


def aggregate(messages: torch.Tensor, edges: EdgeView, reduce: str = "sum") -> torch.Tensor:
    """(E, ...) messages → (N, ...) per receiver; atoms with no edges get zeros."""
    if reduce == "sum":
        return scatter_sum(messages, edges.receivers, edges.num_nodes)
    if reduce == "mean":
        return scatter_mean(messages, edges.receivers, edges.num_nodes)
    raise ValueError(f"unknown reduction '{reduce}'")
