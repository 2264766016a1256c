"""EGNN: E(n)-equivariant graph network with optional coordinate updates."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from geocompose.nn.activations import Activation, activation, mlp
from geocompose.nn.block import BuildContext, State
from geocompose.nn.interaction.base import InteractionParams, MessagePassingInteraction
from geocompose.nn.ops.message import EdgeView
from geocompose.registry import Family, Group, Kind, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal
from geocompose.types import fields as F
from geocompose.types.bounds import Size
from geocompose.types.irreps import parse_irreps
from geocompose.types.signature import require_all, require_scalar

UPDATED_POSITIONS_TYPE = FieldType(parse_irreps("1o"), Level.NODE, translates=True)


class EGNNParams(InteractionParams):
    type: Literal["egnn"] = "egnn"
    hidden: Size = 64
    activation: Activation = "silu"
    update_positions: bool = Field(default=False, description="move the coordinates (eq. 4)")
    attention: bool = Field(default=False, description="gate messages by sigmoid(phi_inf(m_ij))")
    normalization: float = Field(
        default=10.0,
        gt=0.0,
        allow_inf_nan=False,
        description="C = 1/normalization in the coordinate update (a fixed 1/(M-1))",
    )


@register(Kind.INTERACTION, family=Family.CARTESIAN, body_order=2, group=Group.O3)
class EGNNInteraction(MessagePassingInteraction):
    """One E(n)-equivariant layer (Satorras, Hoogeboom, Welling, ICML 2021, eqs. 3–6)::

        m_ij = u(r_ij) phi_e(h_i, h_j, |x_i - x_j|^2 / c^2, e(r_ij))
        x_i <- x_i + C sum_j (x_i - x_j) u(r_ij) phi_x(m_ij)     (update_positions)
        h_i <- h_i + phi_h(h_i, sum_j m_ij)

    ``x`` are the current coordinates: the input positions, or the ones an earlier EGNN
    layer moved. The node state is scalars only, as in the paper; geometry enters
    through squared distances (invariant) and relative vectors ``x_i - x_j``
    (equivariant, translation-free), so ``h`` is O(3)-invariant and the moved
    coordinates transform as positions do (``x -> R x + t``). Two departures, both for
    smoothness at the cutoff: messages and coordinate weights are multiplied by the
    envelope ``u``, and the paper's ``C = 1/(M-1)`` (which jumps when a neighbour enters
    the cutoff) is a fixed ``C = 1/normalization``. Relative vectors of a periodic cell
    come from the graph's image shifts (``edge_vectors``), never from raw coordinates.

    Signature: reads ``node_features: Fx0e`` (scalars only), ``edge_vectors``,
    ``edge_radial``, ``edge_envelope``, ``positions`` (and ``updated_positions`` when an
    earlier layer wrote them) → writes ``node_features: Fx0e`` and, with
    ``update_positions``, ``updated_positions: 1x1o per node, translates``.

    YAML: ``{type: egnn, hidden: 64, update_positions: true, repeat: 4}``
    """

    Params = EGNNParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        names = [
            F.NODE_FEATURES,
            F.EDGE_INDEX,
            F.EDGE_VECTORS,
            F.EDGE_RADIAL,
            F.EDGE_ENVELOPE,
            F.POSITIONS,
        ]
        if F.UPDATED_POSITIONS in upstream:
            names.append(F.UPDATED_POSITIONS)
        reads = require_all(upstream, names, "egnn")
        if isinstance(reads, TypeRefusal):
            return reads
        refusal = require_scalar(
            reads,
            F.NODE_FEATURES,
            "egnn",
            "its vectors are the coordinates: put {type: scalars} before it, or use painn/gvp",
        )
        if refusal is not None:
            return refusal
        writes = {F.NODE_FEATURES: reads[F.NODE_FEATURES]}
        if params.update_positions:
            writes[F.UPDATED_POSITIONS] = UPDATED_POSITIONS_TYPE
        return Signature(reads=reads, writes=writes, guarantee=Group.O3)

    def __init__(self, params: EGNNParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        width = self.irreps_in[F.NODE_FEATURES].dim
        num_radial = self.irreps_in[F.EDGE_RADIAL].dim
        hidden, act = params.hidden, params.activation
        self.moved_before = F.UPDATED_POSITIONS in self.irreps_in
        self.inverse_cutoff_sq = 1.0 / ctx.cutoff ** 2
        self.phi_e = nn.Sequential(
            mlp([2 * width + 1 + num_radial, hidden, hidden], act), activation(act)
        )
        self.phi_inf = nn.Linear(hidden, 1) if params.attention else None
        self.phi_x = (
            mlp([hidden, hidden, 1], act, bias_last=False) if params.update_positions else None
        )
        self.phi_h = mlp([width + hidden, hidden, width], act)
        self.scale = 1.0 / params.normalization

    def relative(self, state: State, edges: EdgeView) -> torch.Tensor:
        """(E, 3) ``x_j - x_i`` of the current coordinates, through the graph's shifts."""
        vectors = state[F.EDGE_VECTORS]
        if not self.moved_before:
            return vectors
        moved = state[F.UPDATED_POSITIONS] - state[F.POSITIONS]  # (N, 3), translation-free
        return vectors + edges.gather_senders(moved) - edges.gather_receivers(moved)

    def message(self, state: State, edges: EdgeView) -> torch.Tensor:
        """(E, hidden [+ 3]): messages m_ij, then the coordinate terms when moving atoms."""
        h = state[F.NODE_FEATURES]
        rel = self.relative(state, edges)  # (E, 3) = x_j - x_i
        distance_sq = (rel * rel).sum(dim=-1, keepdim=True) * self.inverse_cutoff_sq  # (E, 1)
        inputs = [
            edges.gather_receivers(h),
            edges.gather_senders(h),
            distance_sq,
            state[F.EDGE_RADIAL],
        ]
        envelope = state[F.EDGE_ENVELOPE]  # (E, 1)
        m = self.phi_e(torch.cat(inputs, dim=-1)) * envelope  # (E, hidden)
        if self.phi_inf is not None:
            m = m * torch.sigmoid(self.phi_inf(m))
        if self.phi_x is None:
            return m
        # (x_i - x_j) phi_x(m_ij): the edge vector points j -> i's opposite, hence the sign.
        shift = -rel * (self.phi_x(m) * envelope)  # (E, 3)
        return torch.cat([m, shift], dim=-1)

    def update(self, state: State, aggregated: torch.Tensor) -> dict[str, torch.Tensor]:
        h = state[F.NODE_FEATURES]
        m = aggregated[:, : self.params.hidden]
        out = {F.NODE_FEATURES: h + self.phi_h(torch.cat([h, m], dim=-1))}
        if self.phi_x is not None:
            current = state[F.UPDATED_POSITIONS] if self.moved_before else state[F.POSITIONS]
            out[F.UPDATED_POSITIONS] = current + self.scale * aggregated[:, self.params.hidden :]
        return out
