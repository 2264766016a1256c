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


def convolve(
    node_rows: torch.Tensor, filters: torch.Tensor, envelope: torch.Tensor, edges: EdgeView
) -> torch.Tensor:
    """``out_i = sum_j node_rows_j * filters_ij * envelope_ij``: gather, multiply and
    aggregate onto receivers in one step (SchNet's continuous-filter convolution).

    The same function as ``aggregate(gather_senders(x) * filters * envelope)``, but the
    (E, F) products are not kept for the backward pass: only ``node_rows`` (N, F),
    ``filters`` (E, F) and ``envelope`` (E, 1) are, and the gathered rows are gathered
    again when the gradient is needed. That saves two (E, F) tensors per layer, the
    larger part of the memory of a forces call. The backward is written in
    differentiable ops, so training (forces in the loss) differentiates it again.

    Args:
        node_rows: (N, F) sender features.
        filters: (E, F) per-edge filter.
        envelope: (E, 1) per-edge smooth cutoff.
        edges: the edge set.

    Returns:
        (N, F) per receiver; atoms without edges get zeros.
    """
    if not torch.is_grad_enabled() or not (
        node_rows.requires_grad or filters.requires_grad or envelope.requires_grad
    ):
        return _convolve(node_rows, filters, envelope, edges.senders, edges.receivers,
                         edges.num_nodes)  # fmt: skip
    return _Convolve.apply(node_rows, filters, envelope, edges.senders, edges.receivers,
                           edges.num_nodes)  # fmt: skip


def _convolve(node_rows, filters, envelope, senders, receivers, num_nodes):
    messages = node_rows.index_select(0, senders) * (filters * envelope)  # (E, F)
    return scatter_sum(messages, receivers, num_nodes)


class _Convolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, node_rows, filters, envelope, senders, receivers, num_nodes):
        ctx.save_for_backward(node_rows, filters, envelope, senders, receivers)
        ctx.num_nodes = num_nodes
        return _convolve(node_rows, filters, envelope, senders, receivers, num_nodes)

    @staticmethod
    def backward(ctx, grad):
        node_rows, filters, envelope, senders, receivers = ctx.saved_tensors
        needs_rows, needs_filters, needs_envelope = ctx.needs_input_grad[:3]
        grad_edges = grad.index_select(0, receivers)  # (E, F)
        grad_rows = grad_filters = grad_envelope = None
        if needs_rows:
            grad_rows = scatter_sum(grad_edges * (filters * envelope), senders, ctx.num_nodes)
        if needs_filters or needs_envelope:
            gathered = node_rows.index_select(0, senders) * grad_edges  # (E, F)
            if needs_filters:
                grad_filters = gathered * envelope
            if needs_envelope:
                grad_envelope = (gathered * filters).sum(dim=-1, keepdim=True)
        return grad_rows, grad_filters, grad_envelope, None, None, None
