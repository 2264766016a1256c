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


def convolve_vectors(
    node_rows: torch.Tensor,
    filters: torch.Tensor,
    envelope: torch.Tensor,
    directions: torch.Tensor,
    vectors: torch.Tensor | None,
    edges: EdgeView,
    training: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PaiNN's message summed onto receivers (eqs. 7-8) in one step: with
    ``x_ij = node_rows_j * filters_ij * envelope_ij`` cut in three chunks
    ``(x^s, x^vv, x^vs)`` of F channels::

        scalars_i = sum_j x^s_ij
        vectors_i = sum_j x^vv_ij * vectors_j + x^vs_ij * directions_ij

    As :func:`convolve` does for SchNet, the backward keeps only the inputs (no
    (E, 3F) gathered rows or products, no (E, 3, F) vector messages) and gathers
    again; it is written in differentiable ops, so training on forces differentiates
    it again. Vectors are xyz-major, ``(N, 3, F)``, so that every product broadcasts
    over a contiguous run of F channels, and the per-edge messages are summed as one
    contiguous (E, 4F) block: ``index_add_`` of a strided slice is ~30x slower.

    Args:
        node_rows: (N, 3F) sender features, chunks (s, vv, vs).
        filters: (E, 3F) per-edge filter, the same chunks.
        envelope: (E, 1) per-edge smooth cutoff.
        directions: (E, 3) unit vectors along the edges.
        vectors: (N, 3, F) sender vectors, or None where they are all zero.
        edges: the edge set.
        training: a training call (forces in the loss): up to
            :data:`PLAIN_TRAINING_EDGES` edges it runs the plain ops (see there).

    Returns:
        Scalars (N, F) and vectors (N, 3, F) per receiver (views of one (N, 4F)
        tensor); atoms without edges get zeros.
    """
    inputs = (node_rows, filters, envelope, directions, vectors)
    index = (edges.senders, edges.receivers, edges.num_nodes)
    if torch.compiler.is_compiling() or (
        training and edges.senders.shape[0] <= PLAIN_TRAINING_EDGES
    ):
        # torch.compile / torch.export: the plain ops. A graph compiler fuses and plans
        # memory itself, and the Python loop over chunks would fix the edge count.
        summed = _plain_convolve_vectors(*inputs, *index)
    elif not torch.is_grad_enabled() or not any(t is not None and t.requires_grad for t in inputs):
        summed = _convolve_vectors(*inputs, *index)
    else:
        summed = _ConvolveVectors.apply(*inputs, *index)
    width = node_rows.shape[-1] // 3
    return summed[:, :width], summed[:, width:].unflatten(-1, (3, width))


EDGE_CHUNK = 2048
"""Edges per step of :func:`convolve_vectors`. Its temporaries are sized by the chunk,
not by the edge set: ~7 MiB at F = 128 in float32, below glibc's 32 MiB mmap ceiling,
so they come from the heap again at every call instead of as fresh pages, whose first
touch cost more than the arithmetic on a 21,504-edge cell."""


PLAIN_TRAINING_EDGES = 4096
"""Up to this many edges a training call of :func:`convolve_vectors` runs the plain
ops, which keep their (E, 3F) products for the backward. Training differentiates the
backward again, and there the fused step's recomputation of those products costs more
than keeping them: a PaiNN training step (forces with ``create_graph``, loss, backward,
AdamW; freed memory kept) took 0.94-0.97x the fused step's time at 576-3,122 edges
(ethanol and Cu batches) and 1.02-1.03x at 10,942-12,450 (Cu cells), 2026-12-04. What
it keeps is small at this size: a few (E, 3F) tensors per layer, 6 MiB each at 4,096
edges and F = 128 in float32."""


def _chunks(count: int):
    """``slice``s of at most :data:`EDGE_CHUNK` edges covering ``range(count)``."""
    return [slice(start, min(start + EDGE_CHUNK, count)) for start in range(0, count, EDGE_CHUNK)]


def _plain_convolve_vectors(node_rows, filters, envelope, directions, vectors, senders,
                            receivers, num_nodes):  # fmt: skip
    """:func:`_convolve_vectors` in out-of-place ops on the whole edge set."""
    x_s, x_vv, x_vs = (node_rows.index_select(0, senders) * (filters * envelope)).chunk(3, -1)
    vector_messages = x_vs.unsqueeze(1) * directions.unsqueeze(-1)  # (E, 3, F)
    if vectors is not None:
        vector_messages = vector_messages + x_vv.unsqueeze(1) * vectors.index_select(0, senders)
    messages = torch.cat([x_s, vector_messages.flatten(1)], dim=-1)  # (E, 4F)
    return scatter_sum(messages, receivers, num_nodes)


def _convolve_vectors(node_rows, filters, envelope, directions, vectors, senders, receivers,
                      num_nodes):  # fmt: skip
    """(N, 4F): per receiver, the scalar sum then the x, y, z rows of the vector sum."""
    # In place on buffers reused chunk after chunk; this runs outside autograd (no
    # grad, or inside the Function).
    width = node_rows.shape[-1] // 3
    summed = node_rows.new_zeros(num_nodes, 4 * width)
    size = min(EDGE_CHUNK, senders.shape[0])
    x_buffer = node_rows.new_empty(size, 3 * width)
    message_buffer = node_rows.new_empty(size, 4 * width)  # s, then vectors (3, F)
    for part in _chunks(senders.shape[0]):
        count = part.stop - part.start
        x, messages = x_buffer[:count], message_buffer[:count]
        torch.index_select(node_rows, 0, senders[part], out=x)  # (n, 3F)
        x *= filters[part]
        x *= envelope[part]
        x_s, x_vv, x_vs = x.chunk(3, dim=-1)  # (n, F) views
        messages[:, :width] = x_s
        vector_messages = messages[:, width:].unflatten(-1, (3, width))  # (n, 3, F) view
        direction = directions[part].unsqueeze(-1)  # (n, 3, 1)
        if vectors is None:
            torch.mul(x_vs.unsqueeze(1), direction, out=vector_messages)
        else:
            torch.index_select(vectors, 0, senders[part], out=vector_messages)
            vector_messages *= x_vv.unsqueeze(1)
            vector_messages.addcmul_(x_vs.unsqueeze(1), direction)
        summed.index_add_(0, receivers[part], messages)
    return summed


class _ConvolveVectors(torch.autograd.Function):
    @staticmethod
    def forward(ctx, node_rows, filters, envelope, directions, vectors, senders, receivers,
                num_nodes):  # fmt: skip
        ctx.has_vectors = vectors is not None
        saved_vectors = vectors if vectors is not None else node_rows.new_zeros(0)
        ctx.save_for_backward(node_rows, filters, envelope, directions, saved_vectors,
                              senders, receivers)  # fmt: skip
        ctx.num_nodes = num_nodes
        return _convolve_vectors(node_rows, filters, envelope, directions, vectors, senders,
                                 receivers, num_nodes)  # fmt: skip

    @staticmethod
    def backward(ctx, grad):
        inputs = ctx.saved_tensors
        needs = ctx.needs_input_grad[:5]
        # Grad mode is on here only when the caller differentiates the gradient again
        # (create_graph: training on forces); then every op must be recorded.
        backward = _backward_differentiable if torch.is_grad_enabled() else _backward_in_place
        grads = backward(*inputs, ctx.has_vectors, ctx.num_nodes, needs, grad.contiguous())
        return (*grads, None, None, None)


def _backward_differentiable(node_rows, filters, envelope, directions, vectors, senders,
                             receivers, has_vectors, num_nodes, needs, grad):  # fmt: skip
    """The gradients of :func:`_convolve_vectors` in out-of-place ops autograd records."""
    need_rows, need_filters, need_envelope, need_directions, need_vectors = needs
    width = node_rows.shape[-1] // 3
    # One split, not two slices: when training on forces differentiates this again, each
    # slice's backward zero-fills a whole (E, 4F) tensor (measured 0.6 ms apiece, 7 % of
    # a PaiNN training step on 8 ethanols); split's backward is one cat.
    grad_x_s, grad_v = grad.index_select(0, receivers).split([width, 3 * width], dim=-1)
    grad_v = grad_v.unflatten(-1, (3, width))  # (E, 3, F)
    # The gradient with respect to x (E, 3F), chunk by chunk; grad_x_s (E, F) is the first.
    grad_x_vs = (grad_v * directions.unsqueeze(-1)).sum(dim=1)  # (E, F)
    if has_vectors:
        grad_x_vv = (grad_v * vectors.index_select(0, senders)).sum(dim=1)
    else:
        grad_x_vv = torch.zeros_like(grad_x_s)
    grad_x = torch.cat([grad_x_s, grad_x_vv, grad_x_vs], dim=-1)  # (E, 3F)
    weights = filters * envelope  # (E, 3F)
    rows_j = node_rows.index_select(0, senders)  # (E, 3F)
    grad_rows = grad_filters = grad_envelope = grad_directions = grad_vecs = None
    if need_rows:
        grad_rows = scatter_sum(grad_x * weights, senders, num_nodes)
    if need_filters or need_envelope:
        grad_weights = grad_x * rows_j
        if need_filters:
            grad_filters = grad_weights * envelope
        if need_envelope:
            grad_envelope = (grad_weights * filters).sum(dim=-1, keepdim=True)
    if need_directions or need_vectors:
        _, x_vv, x_vs = (rows_j * weights).chunk(3, dim=-1)  # (E, F) each
        if need_directions:
            grad_directions = (grad_v * x_vs.unsqueeze(1)).sum(dim=-1)  # (E, 3)
        if need_vectors:
            grad_vecs = scatter_sum(grad_v * x_vv.unsqueeze(1), senders, num_nodes)
    return grad_rows, grad_filters, grad_envelope, grad_directions, grad_vecs


def _backward_in_place(node_rows, filters, envelope, directions, vectors, senders, receivers,
                       has_vectors, num_nodes, needs, grad):  # fmt: skip
    """The same gradients as :func:`_backward_differentiable` (tested equal), chunk by
    chunk of edges on reused buffers, each written in place; every sum onto atoms reads
    a contiguous block. Outputs that nothing asks for are not computed."""
    need_rows, need_filters, need_envelope, need_directions, need_vectors = needs
    width = node_rows.shape[-1] // 3
    edge_count = senders.shape[0]
    size = min(EDGE_CHUNK, edge_count)
    grad_edges_buffer = grad.new_empty(size, 4 * width)
    grad_x_buffer = grad.new_empty(size, 3 * width)  # chunks (s, vv, vs)
    scratch_buffer = grad.new_empty(size, 3, width)
    rows_buffer = grad.new_empty(size, 3 * width)
    grad_rows = node_rows.new_zeros(node_rows.shape) if need_rows else None
    grad_vecs = vectors.new_zeros(vectors.shape) if need_vectors else None
    grad_filters = filters.new_empty(filters.shape) if need_filters else None
    grad_envelope = envelope.new_empty(envelope.shape) if need_envelope else None
    grad_directions = directions.new_empty(directions.shape) if need_directions else None
    for part in _chunks(edge_count):
        count = part.stop - part.start
        senders_part, envelope_part, filters_part = senders[part], envelope[part], filters[part]
        grad_edges, grad_x = grad_edges_buffer[:count], grad_x_buffer[:count]
        scratch = scratch_buffer[:count]
        torch.index_select(grad, 0, receivers[part], out=grad_edges)  # (n, 4F)
        grad_v = grad_edges[:, width:].unflatten(-1, (3, width))  # (n, 3, F) view
        # The gradient with respect to x = rows_j * filters * envelope, chunk by chunk.
        grad_x_s, grad_x_vv, grad_x_vs = grad_x.chunk(3, dim=-1)
        grad_x_s.copy_(grad_edges[:, :width])
        direction = directions[part]
        torch.mul(grad_v[:, 0], direction[:, 0:1], out=grad_x_vs)
        grad_x_vs.addcmul_(grad_v[:, 1], direction[:, 1:2])
        grad_x_vs.addcmul_(grad_v[:, 2], direction[:, 2:3])
        if has_vectors:
            torch.index_select(vectors, 0, senders_part, out=scratch)
            scratch *= grad_v
            torch.sum(scratch, dim=1, out=grad_x_vv)
        else:
            grad_x_vv.zero_()
        # The gradient with respect to filters * envelope lands in grad_filters'
        # own rows when it is asked for.
        rows_j = grad_filters[part] if need_filters else rows_buffer[:count]
        torch.index_select(node_rows, 0, senders_part, out=rows_j)  # (n, 3F)
        if need_directions or need_vectors:
            x = rows_j[:, width:] * filters_part[:, width:]  # (n, 2F): chunks (vv, vs)
            x *= envelope_part
            x_vv, x_vs = x.chunk(2, dim=-1)
            if need_directions:
                torch.bmm(grad_v, x_vs.unsqueeze(-1), out=grad_directions[part].unsqueeze(-1))
            if need_vectors:
                torch.mul(grad_v, x_vv.unsqueeze(1), out=scratch)
                grad_vecs.index_add_(0, senders_part, scratch)
        if need_rows:
            weighted = scratch.view(count, 3 * width)
            torch.mul(filters_part, envelope_part, out=weighted)
            weighted *= grad_x
            grad_rows.index_add_(0, senders_part, weighted)
        if need_filters or need_envelope:
            rows_j *= grad_x  # now the gradient with respect to filters * envelope
            if need_envelope:
                torch.bmm(rows_j.unsqueeze(1), filters_part.unsqueeze(-1),
                          out=grad_envelope[part].unsqueeze(-1))  # fmt: skip
            if need_filters:
                rows_j *= envelope_part
    return grad_rows, grad_filters, grad_envelope, grad_directions, grad_vecs
