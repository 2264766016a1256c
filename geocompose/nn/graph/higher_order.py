"""Higher-order topology: triplets k→j→i and quadruplets l→k→j→i from the edge list.

Body order 3 and 4 scalarisation (DimeNet, GemNet) sums over pairs and chains of
edges. Everything here is integer topology, built vectorised in torch (no Python loop
over edges or atoms) and sized before it is allocated. Nothing here memoises: the
blocks keep what they build in the batch's cache, beside the neighbour list (see
``interaction.dimenet.layout`` and :mod:`geocompose.data.cache`), so triplets are built
once per batch and reused by every layer, every epoch and every check of the verifier.

Conventions (those of ``nn.graph.neighbours``): edge ``e = (j → i)`` has sender
``j = edge_index[0, e]``, receiver ``i = edge_index[1, e]``, integer shift ``s_e`` and
vector ``v_e = x_j - x_i + s_e @ cell``; edges are sorted by receiver.

* A **triplet** ``(kj, ji)`` is a pair of edges through atom j: ``receiver(kj) ==
  sender(ji)``. The backtracking pair, where ``kj`` is the reverse of ``ji`` (k is the
  *same image* of i: same atom and opposite shift), is excluded; k = a *different
  image* of i is a genuine triplet in a small periodic cell.
* A **quadruplet** ``(lk, kj, ji)`` extends a triplet by an edge into k, excluding
  ``lk = reverse(kj)`` and l being the same image as i (a 3-ring, not a 4-body chain).

Counts for fcc Cu at 5 Å (42 neighbours): T ≈ 41 E, Q ≈ 41² E, so quadruplets are
restricted to a sub-graph of short edges (``benchmarks/triplets.py`` prints figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geocompose.errors import StructureError
from geocompose.nn.embedding.angular_basis import spherical_harmonics_m0, unit
from geocompose.nn.ops.scatter import scatter_sum

__all__ = [
    "MAX_QUADRUPLETS",
    "MAX_TRIPLETS",
    "TripletLayout",
    "count_higher_order",
    "quadruplet_index",
    "reverse_edges",
    "triplet_index",
    "triplet_layout",
]

MAX_TRIPLETS = 2**27  # ~134M: 2 int64 rows = 2 GiB; beyond that refuse with the estimate
MAX_QUADRUPLETS = 2**27
# Dense (padded) triplet layout when its N * K_out * K_in slots are at most this many
# times the triplet count: crystals pad ~1x, mixed-size batches fall back to scatter.
DENSE_PAD_RATIO = 3.0
_CHUNK = 2**22  # sparse contraction: elements of (chunk, L, C) per step
_PACKED_KEY_LIMIT = 2**62

def _segments(counts: torch.Tensor, total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For rows r with counts[r] children: (parent row, rank within parent) per child."""
    rows = torch.arange(len(counts), device=counts.device)
    parent = torch.repeat_interleave(rows, counts, output_size=total)  # (total,)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(total, device=counts.device) - starts[parent]
    return parent, rank


def _receiver_order(receivers: torch.Tensor) -> torch.Tensor | None:
    """None when edges are receiver-sorted (the builders' contract), else a stable sort."""
    if receivers.numel() < 2 or bool((receivers[1:] >= receivers[:-1]).all()):
        return None
    return torch.sort(receivers, stable=True).indices


def reverse_edges(
    edge_index: torch.Tensor, edge_shifts: torch.Tensor, num_nodes: int
) -> torch.Tensor:
    """(E,) index of each edge's reverse ``(i → j, -s)``, or -1 where there is none
    (k-nearest-neighbour graphs need not be symmetric)."""
    senders, receivers = edge_index
    shifts = edge_shifts.to(torch.int64)
    num = senders.numel()
    if num == 0:
        return torch.zeros(0, dtype=torch.int64, device=senders.device)
    reach = int(shifts.abs().max())
    span = 2 * reach + 1
    if num_nodes * num_nodes * span**3 < _PACKED_KEY_LIMIT:
        # Pack (receiver, sender, shift) into one int64 and binary-search the reverse.
        def pack(r, s, sh):
            key = r * num_nodes + s
            for axis in range(3):
                key = key * span + (sh[:, axis] + reach)
            return key

        keys, order = torch.sort(pack(receivers, senders, shifts))
        wanted = pack(senders, receivers, -shifts)
        pos = torch.searchsorted(keys, wanted).clamp(max=num - 1)
        found = keys[pos] == wanted
        return torch.where(found, order[pos], -1)
    # Too many images to pack: match rows through unique (slower, rare).
    rows = torch.cat([receivers[:, None], senders[:, None], shifts], 1)
    flipped = torch.cat([senders[:, None], receivers[:, None], -shifts], 1)
    _, inverse = torch.unique(torch.cat([rows, flipped]), dim=0, return_inverse=True)
    owner = torch.full((2 * num,), -1, dtype=torch.int64, device=senders.device)
    owner[inverse[:num]] = torch.arange(num, device=senders.device)
    return owner[inverse[num:]]


def _refuse(what: str, count: int, limit: int, width: int) -> None:
    if count > limit:
        gib = count * width * 8 / 2**30
        raise StructureError(
            f"{count:,} {what} (index {gib:.1f} GiB) exceed the limit of {limit:,}; "
            "use a smaller cutoff, a smaller torsion_cutoff, or smaller structures"
        )


def triplet_index(
    edge_index: torch.Tensor,
    edge_shifts: torch.Tensor,
    num_nodes: int,
    max_triplets: int = MAX_TRIPLETS,
    reverse: torch.Tensor | None = None,
) -> torch.Tensor:
    """(2, T) edge pairs ``[kj, ji]`` with ``receiver(kj) == sender(ji)``, backtracking
    excluded, sorted by ``ji`` (so aggregation onto ``ji`` is receiver-sorted).

    Raises:
        StructureError: when T would exceed ``max_triplets`` (counted before allocating).
    """
    senders, receivers = edge_index
    device = senders.device
    order = _receiver_order(receivers)
    degree = torch.bincount(receivers, minlength=num_nodes)  # (N,) incoming edges per atom
    first = torch.cumsum(degree, 0) - degree  # (N,) start of each atom's incoming block
    counts = degree[senders]  # (E,) candidates k for each ji
    total = int(counts.sum())
    _refuse("triplets", total, max_triplets, 2)
    ji, rank = _segments(counts, total)
    kj = first[senders][ji] + rank  # position in receiver-sorted order
    if order is not None:
        kj = order[kj]
    if reverse is None:
        reverse = reverse_edges(edge_index, edge_shifts, num_nodes)
    keep = kj != reverse[ji]
    return torch.stack([kj[keep], ji[keep]]).to(device)


def quadruplet_index(
    edge_index: torch.Tensor,
    edge_shifts: torch.Tensor,
    num_nodes: int,
    triplets: torch.Tensor,
    short: torch.Tensor,
    max_quadruplets: int = MAX_QUADRUPLETS,
    reverse: torch.Tensor | None = None,
) -> torch.Tensor:
    """(3, Q) edge chains ``[lk, kj, ji]`` whose three edges are all ``short``.

    Args:
        triplets: (2, T) from :func:`triplet_index`.
        short: (E,) bool, edges allowed in a chain (e.g. shorter than a torsion cutoff).

    Excluded: ``lk`` the reverse of ``kj`` (l = j), and l the same image as i (3-rings).
    Sorted by ``ji``, then ``kj``.
    """
    senders, receivers = edge_index
    shifts = edge_shifts.to(torch.int64)
    if reverse is None:
        reverse = reverse_edges(edge_index, edge_shifts, num_nodes)
    kj, ji = triplets
    both = short[kj] & short[ji]
    kj, ji = kj[both], ji[both]
    order = _receiver_order(receivers)
    by_receiver = (
        order if order is not None else torch.arange(len(receivers), device=receivers.device)
    )
    short_in = by_receiver[short[by_receiver]]  # short edges, receiver-sorted
    degree = torch.bincount(
        receivers[short_in], minlength=num_nodes
    )  # (N,) short edges into each atom
    first = torch.cumsum(degree, 0) - degree
    k = senders[kj]
    counts = degree[k]  # (T',)
    total = int(counts.sum())
    _refuse("quadruplets", total, max_quadruplets, 3)
    t, rank = _segments(counts, total)
    lk = short_in[first[k][t] + rank]
    kj, ji = kj[t], ji[t]
    keep = lk != reverse[kj]
    ring = keep & (senders[lk] == receivers[ji])  # l is atom i: same image only if shifts cancel
    where = ring.nonzero().flatten()
    closes = (shifts[lk[where]] + shifts[kj[where]] + shifts[ji[where]] == 0).all(-1)
    keep[where[closes]] = False
    return torch.stack([lk[keep], kj[keep], ji[keep]])


def count_higher_order(
    edge_index: torch.Tensor, num_nodes: int, short: torch.Tensor | None = None
) -> dict[str, int]:
    """Candidate triplets and quadruplets (before the exclusions), counted in O(E)
    without building them: what the builders would allocate."""
    senders, receivers = edge_index
    degree = torch.bincount(receivers, minlength=num_nodes)
    out = {"edges": int(senders.numel()), "triplets_raw": int(degree[senders].sum())}
    mask = torch.ones_like(senders, dtype=torch.bool) if short is None else short
    deg_s = torch.bincount(receivers[mask], minlength=num_nodes)  # (N,)
    via = scatter_sum(
        deg_s[senders[mask]], receivers[mask], num_nodes
    )  # (N,) sum over kj of deg_s(k)
    out["quadruplets_raw"] = int(via[senders[mask]].sum())
    return out


@dataclass(frozen=True)
class TripletLayout:
    """Triplets of one batch, with the padded layout that turns their sums into bmm.

    Sparse form: ``kj, ji`` (T,). Dense form (when padding is cheap, e.g. crystals):
    atom j's incoming edges in ``K_in`` slots and outgoing edges in ``K_out`` slots, so
    a sum over triplets ``out_ji = sum_kj Y(kj, ji) Z_kj`` is one batched matmul of
    ``(N, K_out, K_in)`` by ``(N, K_in, C)`` — GemNet's ``Kmax`` layout. ``mask`` zeroes
    padding and the backtracking slot. Both forms give the same sums (tested).
    """

    kj: torch.Tensor  # (T,)
    ji: torch.Tensor  # (T,)
    num_edges: int
    # Empty slots point at edge 0: whatever they gather is multiplied by a zero basis.
    in_index: torch.Tensor | None = None  # (N, K_in) edge id per incoming slot
    out_index: torch.Tensor | None = None  # (N, K_out) edge id per outgoing slot
    out_position: torch.Tensor | None = None  # (E,) flat slot j * K_out + o of each edge
    mask: torch.Tensor | None = None  # (N, K_out, K_in) bool, a real triplet
    in_is_view: bool = False  # in_index is arange(E): every atom has K_in edges (crystals)

    @property
    def dense(self) -> bool:
        return self.mask is not None

    def cosines(self, edge_vectors: torch.Tensor) -> torch.Tensor:
        """cos of the bond angle k-j-i: (N, K_out, K_in) dense or (T,) sparse."""
        u = unit(edge_vectors)  # (E, 3), u_e points from receiver to sender
        if not self.dense:
            return -(u[self.kj] * u[self.ji]).sum(-1)
        # x_i - x_j is -v_ji; x_k - x_j is v_kj: cos = (-u_ji) . u_kj, all pairs per atom.
        return -torch.bmm(u[self.out_index], self._gather_in(u).transpose(1, 2))

    def _gather_in(self, values: torch.Tensor) -> torch.Tensor:
        """(E, ...) → (N, K_in, ...) rows of each atom's incoming edges; a free view when
        every atom has the same number of receiver-sorted edges."""
        if self.in_is_view:
            return values.view(self.in_index.shape + values.shape[1:])
        return values[self.in_index]

    def harmonics(
        self, edge_vectors: torch.Tensor, num_orders: int, order_major: bool = False
    ) -> torch.Tensor:
        """``Y_l^0(angle k-j-i)`` for l < ``num_orders``, zero on masked slots:
        (N, K_out, K_in, L) dense — (N, L, K_out, K_in) with ``order_major``, the layout
        ``contract(per_order=True)`` takes — or (T, L) sparse (``order_major`` ignored)."""
        y = spherical_harmonics_m0(num_orders - 1, self.cosines(edge_vectors))
        if not self.dense:
            return y
        y = y * self.mask[..., None].to(y.dtype)
        return y.permute(0, 3, 1, 2).contiguous() if order_major else y

    def contract(
        self, basis: torch.Tensor, values: torch.Tensor, per_order: bool = False
    ) -> torch.Tensor:
        """``out_ji[(l,) c] = sum_{kj} basis(kj, ji)[l] values_kj[l, c]``.

        Args:
            basis: from :meth:`harmonics` (``order_major`` when ``per_order``): dense,
                zero on masked slots, or (T, L) sparse.
            values: (E, L, C) per edge.
            per_order: keep the order axis l, (E, L, C); else sum it, (E, C).
        """
        _, orders, channels = values.shape
        if not self.dense:
            return self._contract_sparse(basis, values, per_order)
        n, k_out, k_in = self.mask.shape
        padded = self._gather_in(values)  # (N, K_in, L, C)
        if per_order:
            a = basis.reshape(n * orders, k_out, k_in)  # order-major: (N, L, K_out, K_in)
            b = padded.permute(0, 2, 1, 3).reshape(n * orders, k_in, channels)
            out = torch.bmm(a, b).view(n, orders, k_out, channels).transpose(1, 2)
            return out.reshape(n * k_out, orders, channels)[self.out_position]
        out = torch.bmm(
            basis.reshape(n, k_out, k_in * orders), padded.reshape(n, k_in * orders, channels)
        )
        return out.reshape(n * k_out, channels)[self.out_position]

    def _contract_sparse(self, basis, values, per_order):
        num, orders, channels = values.shape
        out = values.new_zeros((num, orders, channels) if per_order else (num, channels))
        step = max(1, _CHUNK // max(orders * channels, 1))
        for start in range(0, len(self.kj), step):  # chunks bound memory; not a loop over edges
            kj, ji = self.kj[start : start + step], self.ji[start : start + step]
            terms = basis[start : start + step, :, None] * values[kj]  # (chunk, L, C)
            out = out + scatter_sum(terms if per_order else terms.sum(1), ji, num)
        return out


def triplet_layout(
    edge_index: torch.Tensor,
    edge_shifts: torch.Tensor,
    num_nodes: int,
    reverse: torch.Tensor | None = None,
) -> TripletLayout:
    """The :class:`TripletLayout` of an edge set, dense where padding is cheap.

    Args:
        reverse: (E,) from :func:`reverse_edges`, when the caller already has it.
    """
    senders, receivers = edge_index
    num_edges = senders.numel()
    if reverse is None:
        reverse = reverse_edges(edge_index, edge_shifts, num_nodes)
    kj, ji = triplet_index(edge_index, edge_shifts, num_nodes, reverse=reverse)
    if num_edges == 0:
        return TripletLayout(kj, ji, num_edges)
    deg_in = torch.bincount(receivers, minlength=num_nodes)
    deg_out = torch.bincount(senders, minlength=num_nodes)
    k_in, k_out = int(deg_in.max()), int(deg_out.max())
    slots = num_nodes * k_in * k_out
    if slots > DENSE_PAD_RATIO * max(len(kj), 1) or slots > MAX_TRIPLETS:
        return TripletLayout(kj, ji, num_edges)
    device = senders.device
    by_receiver = torch.sort(receivers, stable=True).indices  # identity for sorted edges
    by_sender = torch.sort(senders, stable=True).indices
    in_atom, in_slot = _segments(deg_in, num_edges)
    out_atom, out_slot = _segments(deg_out, num_edges)
    in_index = torch.full((num_nodes, k_in), -1, dtype=torch.int64, device=device)
    in_index[in_atom, in_slot] = by_receiver
    out_index = torch.full((num_nodes, k_out), -1, dtype=torch.int64, device=device)
    out_index[out_atom, out_slot] = by_sender
    out_position = torch.empty(num_edges, dtype=torch.int64, device=device)
    out_position[by_sender] = out_atom * k_out + out_slot
    in_position = torch.empty(num_edges, dtype=torch.int64, device=device)
    in_position[by_receiver] = in_slot
    valid = (out_index >= 0)[:, :, None] & (in_index >= 0)[:, None, :]  # (N, K_out, K_in)
    back = reverse[by_sender] >= 0  # outgoing edges with a reverse: clear its slot
    flat = valid.view(-1)
    e = by_sender[back]
    flat[out_position[e] * k_in + in_position[reverse[e]]] = False
    in_is_view = in_index.numel() == num_edges and bool(
        (in_index.flatten() == torch.arange(num_edges, device=device)).all()
    )
    in_index, out_index = in_index.clamp(min=0), out_index.clamp(min=0)
    return TripletLayout(kj, ji, num_edges, in_index, out_index, out_position, valid, in_is_view)
