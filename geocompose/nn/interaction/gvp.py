"""GVP-GNN: message passing with geometric vector perceptrons and vector gating."""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from geocompose.nn.activations import Activation, activation
from geocompose.nn.block import BuildContext, State
from geocompose.nn.interaction.base import InteractionParams, MessagePassingInteraction
from geocompose.nn.ops.cartesian import (
    NORM_EPSILON,
    CartesianLayout,
    VectorLinear,
    cartesian_irreps,
    cartesian_reads,
    safe_unit,
    vector_norm,
)
from geocompose.nn.ops.message import EdgeView
from geocompose.registry import Family, Group, Kind, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal
from geocompose.types import fields as F
from geocompose.types.bounds import Size


class GVP(nn.Module):
    """Geometric vector perceptron ``(s, V) -> (s', V')`` (Jing et al., ICLR 2021, Alg. 1)::

        V_h = W_h V,  V_mu = W_mu V_h,  s_m = W_m [s, |V_h|] + b,  s' = act(s_m)
        V' = sigmoid(W_g act(s_m) + b_g) * V_mu      (vector gating, Jing et al. 2021b)
        V' = sigmoid(|V_mu|) * V_mu                  (without gating)

    with ``h = max(v_in, v_out)`` hidden vector channels. ``act=None`` makes the layer
    linear in ``s_m`` (the last GVP of a stack). Norms are the smooth
    :func:`~geocompose.nn.ops.cartesian.vector_norm` with ``eps = norm_epsilon``.
    """

    def __init__(
        self,
        s_in: int,
        v_in: int,
        s_out: int,
        v_out: int,
        act: Activation | None,
        vector_gate: bool,
        norm_epsilon: float = NORM_EPSILON,
    ):
        super().__init__()
        self.v_in, self.v_out = v_in, v_out
        self.norm_scale = norm_epsilon**0.5
        hidden = max(v_in, v_out) if v_in else 0
        self.w_h = VectorLinear(v_in, hidden) if v_in else None
        self.w_mu = VectorLinear(hidden, v_out) if v_in and v_out else None
        self.w_m = nn.Linear(s_in + hidden, s_out)
        self.w_g = nn.Linear(s_out, v_out) if vector_gate and v_out else None
        self.act = activation(act) if act is not None else None

    def forward(self, s: torch.Tensor, v: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``s (R, s_in)``, ``v (R, v_in, 3)`` (None when v_in = 0) → ``(R, s_out)``, ``(R, v_out, 3)``."""
        if self.w_h is not None:
            v_h = self.w_h(v)  # (R, h, 3)
            s = torch.cat([s, vector_norm(v_h, self.norm_scale)], dim=-1)
        s_m = self.w_m(s)
        s_out = self.act(s_m) if self.act is not None else s_m
        if self.w_mu is None:  # no vector input: nothing to gate, V' = 0
            return s_out, s_m.new_zeros(s_m.shape[0], self.v_out, 3)
        v_mu = self.w_mu(v_h)  # (R, v_out, 3)
        if self.w_g is not None:
            gate = torch.sigmoid(self.w_g(s_out))  # (R, v_out)
        elif self.act is not None:
            gate = torch.sigmoid(vector_norm(v_mu, self.norm_scale))
        else:
            return s_out, v_mu
        return s_out, gate.unsqueeze(-1) * v_mu


class GVPStack(nn.Sequential):
    """GVPs through the given ``(scalars, vectors)`` sizes; the last one is linear."""

    def __init__(
        self,
        sizes: list[tuple[int, int]],
        act: Activation,
        vector_gate: bool,
        norm_epsilon: float = NORM_EPSILON,
    ):
        super().__init__(
            *(
                GVP(
                    *a,
                    *b,
                    act=None if i == len(sizes) - 2 else act,
                    vector_gate=vector_gate,
                    norm_epsilon=norm_epsilon,
                )
                for i, (a, b) in enumerate(itertools.pairwise(sizes))
            )
        )

    def forward(self, s, v):
        for layer in self:
            s, v = layer(s, v)
        return s, v


class VectorLayerNorm(nn.Module):
    """LayerNorm on scalars, and a soft RMS normalisation of vectors,
    ``V / sqrt(mean_c |v_c|^2 + eps)``. GVP-GNN's vector LayerNorm has eps = 1e-8
    (unit-RMS vectors); the default eps = 1 gives vanishing vectors no cusp (see
    ``vector_norm``) but leaves small vectors small."""

    def __init__(self, scalars: int, norm_epsilon: float = NORM_EPSILON):
        super().__init__()
        self.scalar = nn.LayerNorm(scalars)
        self.epsilon = norm_epsilon

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean_sq = (v * v).sum(dim=-1).mean(dim=-1, keepdim=True)  # (N, 1)
        return self.scalar(s), v / torch.sqrt(mean_sq + self.epsilon).unsqueeze(-1)


class GVPParams(InteractionParams):
    type: Literal["gvp"] = "gvp"
    vectors: Size = 16
    activation: Activation = "silu"
    vector_gate: bool = True
    layer_norm: bool = True
    normalization: float = Field(
        default=10.0,
        gt=0.0,
        allow_inf_nan=False,
        description="messages are summed and divided by this (a fixed mean over neighbours)",
    )
    norm_epsilon: float = Field(
        default=NORM_EPSILON,
        gt=0.0,
        allow_inf_nan=False,
        description=(
            "eps of the vector norms sqrt(|v|^2 + eps) - sqrt(eps) and of the vector "
            "LayerNorm V / sqrt(mean |v|^2 + eps): 1 keeps the energy smooth where vectors "
            "vanish but leaves small vectors small; GVP-GNN's code uses 1e-8 (unit-RMS vectors)"
        ),
    )


@register(Kind.INTERACTION, family=Family.CARTESIAN, body_order=3, group=Group.O3)
class GVPInteraction(MessagePassingInteraction):
    """One GVP-GNN layer (Jing, Eismann, Suriana, Townshend, Dror, ICLR 2021, eqs. 3–4,
    with the vector gating of Jing, Eismann, Soni, Dror, arXiv 2106.03843)::

        m_ij = u(r_ij) g_msg( [s_j, e(r_ij), s_i],  [V_j, r_ij/|r_ij|, V_i] )   3 GVPs
        (s, V)_i <- LN((s, V)_i + sum_j m_ij / normalization)
        (s, V)_i <- LN((s, V)_i + g_ff((s, V)_i))                              2 GVPs

    Node features are ``Sx0e + Vx1o``; edge features are the radial basis ``e`` (0e)
    and the unit edge vector (one 1o channel). GVPs mix vectors only linearly and gate
    them with invariants, so the layer is O(3)-equivariant. For smoothness at the
    cutoff messages carry the envelope ``u`` and the paper's mean over neighbours is a
    sum divided by a fixed ``normalization``; the vector LayerNorm is softened (see
    :class:`VectorLayerNorm`). No dropout (deterministic by design).

    Signature: reads ``node_features: Sx0e`` (vectors start at zero) or ``Sx0e + Gx1o``,
    ``edge_radial``, ``edge_envelope``, ``edge_vectors``, ``edge_lengths`` → writes
    ``node_features: Sx0e + Vx1o`` with ``V = vectors``.

    YAML: ``{type: gvp, vectors: 16, vector_gate: true, repeat: 3}``
    """

    Params = GVPParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        found = cartesian_reads(upstream, "gvp")
        if isinstance(found, TypeRefusal):
            return found
        reads, layout = found
        irreps = cartesian_irreps(layout.num_scalars, params.vectors)
        return Signature(
            reads=reads, writes={F.NODE_FEATURES: FieldType(irreps, Level.NODE)}, guarantee=Group.O3
        )

    def __init__(self, params: GVPParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        self.layout_in = CartesianLayout.of(self.irreps_in[F.NODE_FEATURES])
        scalars, vectors = self.layout_in.num_scalars, params.vectors
        self.layout = CartesianLayout.canonical(scalars, vectors)
        vectors_in = self.layout_in.num_vectors
        self.vectors_in = VectorLinear(vectors_in, vectors) if 0 < vectors_in != vectors else None
        node_v = vectors if vectors_in else 0  # vector channels of each node in a message
        num_radial = self.irreps_in[F.EDGE_RADIAL].dim
        act, gate, eps = params.activation, params.vector_gate, params.norm_epsilon
        self.message_gvps = GVPStack(
            [
                (2 * scalars + num_radial, 2 * node_v + 1),
                (scalars, vectors),
                (scalars, vectors),
                (scalars, vectors),
            ],
            act,
            gate,
            eps,
        )
        self.feedforward = GVPStack(
            [(scalars, vectors), (4 * scalars, 2 * vectors), (scalars, vectors)], act, gate, eps
        )
        self.norm_message = VectorLayerNorm(scalars, eps) if params.layer_norm else None
        self.norm_feedforward = VectorLayerNorm(scalars, eps) if params.layer_norm else None
        self.scale = 1.0 / params.normalization

    def node_state(self, state: State) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Scalars (N, S) and vectors (N, V, 3), or None where upstream had none."""
        s, v = self.layout_in.split(state[F.NODE_FEATURES])
        if self.layout_in.num_vectors == 0:
            return s, None
        return s, (self.vectors_in(v) if self.vectors_in is not None else v)

    def message(self, state: State, edges: EdgeView) -> torch.Tensor:
        """(E, S + 3V): the message GVPs on [sender, edge, receiver], times the envelope."""
        s, v = self.node_state(state)
        unit = safe_unit(state[F.EDGE_VECTORS], state[F.EDGE_LENGTHS]).unsqueeze(1)  # (E, 1, 3)
        s_e = torch.cat(
            [edges.gather_senders(s), state[F.EDGE_RADIAL], edges.gather_receivers(s)], dim=-1
        )
        if v is None:
            v_e = unit
        else:
            v_e = torch.cat([edges.gather_senders(v), unit, edges.gather_receivers(v)], dim=1)
        m_s, m_v = self.message_gvps(s_e, v_e)
        envelope = state[F.EDGE_ENVELOPE]  # (E, 1)
        return self.layout.join(m_s * envelope, m_v * envelope.unsqueeze(-1))

    def update(self, state: State, aggregated: torch.Tensor) -> dict[str, torch.Tensor]:
        s, v = self.node_state(state)
        ds, dv = self.layout.split(aggregated * self.scale)
        s, v = s + ds, (dv if v is None else v + dv)
        if self.norm_message is not None:
            s, v = self.norm_message(s, v)
        fs, fv = self.feedforward(s, v)
        s, v = s + fs, v + fv
        if self.norm_feedforward is not None:
            s, v = self.norm_feedforward(s, v)
        return {F.NODE_FEATURES: self.layout.join(s, v)}
