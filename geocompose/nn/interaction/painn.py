"""PaiNN: polarizable atom interaction neural network (Cartesian scalar–vector family)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from geocompose.nn.activations import Activation, mlp
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
from geocompose.nn.ops.message import EdgeView, convolve_vectors
from geocompose.registry import Family, Group, Kind, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal
from geocompose.types import fields as F


class PaiNNParams(InteractionParams):
    type: Literal["painn"] = "painn"
    activation: Activation = "silu"
    norm_epsilon: float = Field(
        default=NORM_EPSILON,
        gt=0.0,
        allow_inf_nan=False,
        description=(
            "eps of the gate's vector norm sqrt(|v|^2 + eps) - sqrt(eps): 1 keeps the energy "
            "smooth where vectors vanish but is ~|v|^2 / 2 for PaiNN's small vectors; "
            "PaiNN's reference code uses 1e-8 (a plain norm for any vector above 1e-4); "
            "blueprints/painn.yaml takes 1e-2, which trained as well as 1e-8 and 9 % better "
            "than 1 on xTB ethanol"
        ),
    )


@register(Kind.INTERACTION, family=Family.CARTESIAN, body_order=3, group=Group.O3)
class PaiNNInteraction(MessagePassingInteraction):
    """One PaiNN message + update block (Schütt, Unke, Gastegger, ICML 2021, eqs. 7–12).

    Node state: scalars ``s_i`` (F) and vectors ``v_i`` (F x 3), carried together in
    ``node_features`` as ``"Fx0e + Fx1o"``. With ``x = phi(s_j) o W(r_ij)`` split in
    three (``phi = Dense(act(Dense(s)))``, ``W = Dense(e(r_ij)) * u(r_ij)`` on the radial
    basis ``e`` and the envelope ``u``)::

        message (eqs. 7-8):  s_i += sum_j x^s_ij
                             v_i += sum_j x^vv_ij * v_j + x^vs_ij * r_ij / |r_ij|
        update (eqs. 9-12):  a = Dense(act(Dense([s_i, |V v_i|])))  split in a_vv, a_sv, a_ss
                             v_i += a_vv * (U v_i)
                             s_i += a_ss + a_sv * <U v_i, V v_i>

    ``U`` and ``V`` mix vector channels without bias, every nonlinearity acts on
    invariants, and vectors only ever meet scalars by products, so the block is
    O(3)-equivariant. Norms are ``sqrt(v.v + eps) - sqrt(eps)`` with ``eps =
    norm_epsilon`` (1 by default, smooth where vectors vanish; 1e-8 in the reference
    code; see :func:`~geocompose.nn.ops.cartesian.vector_norm`), and the direction of a
    zero-length edge is the zero vector, so coincident and isolated atoms stay finite.

    Signature: reads ``node_features: Fx0e`` (the vectors start at zero, as in PaiNN)
    or ``Fx0e + Gx1o`` (G vector channels are mixed into F when G != F),
    ``edge_radial``, ``edge_envelope``, ``edge_vectors``, ``edge_lengths`` → writes
    ``node_features: Fx0e + Fx1o``.

    YAML: ``{type: painn, repeat: 3}``
    """

    Params = PaiNNParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        found = cartesian_reads(upstream, "painn")
        if isinstance(found, TypeRefusal):
            return found
        reads, layout = found
        width = layout.num_scalars
        writes = {F.NODE_FEATURES: FieldType(cartesian_irreps(width, width), Level.NODE)}
        return Signature(reads=reads, writes=writes, guarantee=Group.O3)

    def __init__(self, params: PaiNNParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        self.layout_in = CartesianLayout.of(self.irreps_in[F.NODE_FEATURES])
        width = self.width = self.layout_in.num_scalars
        self.layout = CartesianLayout.canonical(width, width)
        vectors_in = self.layout_in.num_vectors
        # Upstream vectors with another channel count are mixed into F channels (a linear
        # map commutes with rotations); none at all means PaiNN's zero initialisation.
        self.vectors_in = VectorLinear(vectors_in, width) if 0 < vectors_in != width else None
        num_radial = self.irreps_in[F.EDGE_RADIAL].dim
        self.phi = mlp([width, width, 3 * width], params.activation)
        self.filter = nn.Linear(num_radial, 3 * width)
        self.mix_u = VectorLinear(width, width)
        self.mix_v = VectorLinear(width, width)
        self.gate = mlp([2 * width, width, 3 * width], params.activation)
        self.norm_scale = params.norm_epsilon**0.5

    def node_state(self, state: State) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Scalars (N, F) and vectors (N, F, 3), or None where upstream had no vectors."""
        s, v = self.layout_in.split(state[F.NODE_FEATURES])
        if self.layout_in.num_vectors == 0:
            return s, None
        return s, (self.vectors_in(v) if self.vectors_in is not None else v)

    def message(self, state: State, edges: EdgeView) -> torch.Tensor:
        """(E, 4F): the messages of eqs. 7–8 as an ``Fx0e + Fx1o`` field per edge.

        The plain form of what :meth:`forward` computes fused; kept as the reference
        the fused step is tested against."""
        s, v = self.node_state(state)
        filters = self.filter(state[F.EDGE_RADIAL]) * state[F.EDGE_ENVELOPE]  # (E, 3F)
        x = edges.gather_senders(self.phi(s)) * filters  # (E, 3F)
        x_s, x_vv, x_vs = torch.split(x, self.width, dim=-1)  # (E, F) each
        unit = safe_unit(state[F.EDGE_VECTORS], state[F.EDGE_LENGTHS])  # (E, 3)
        dv = x_vs.unsqueeze(-1) * unit.unsqueeze(1)  # (E, F, 3)
        if v is not None:  # the first block after a scalar embedding has v_j = 0
            dv = dv + x_vv.unsqueeze(-1) * edges.gather_senders(v)
        return self.layout.join(x_s, dv)

    def update(self, state: State, aggregated: torch.Tensor) -> dict[str, torch.Tensor]:
        s, v = self.node_state(state)
        ds, dv = self.layout.split(aggregated)  # (N, F), (N, F, 3)
        v = dv if v is None else v + dv
        return self.mix(s + ds, v.transpose(-1, -2))

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        # message + sum as one step whose backward keeps no per-edge products (the same
        # function as message() aggregated); vectors travel xyz-major inside the block.
        edges = EdgeView.from_state(state, self.edge_index_field)
        s, v = self.node_state(state)
        v = None if v is None else v.transpose(-1, -2).contiguous()  # (N, 3, F)
        ds, dv = convolve_vectors(
            self.phi(s),
            self.filter(state[F.EDGE_RADIAL]),
            state[F.EDGE_ENVELOPE],
            safe_unit(state[F.EDGE_VECTORS], state[F.EDGE_LENGTHS]),
            v,
            edges,
            training=self.training,
        )
        return self.mix(s + ds, dv if v is None else v + dv)

    def mix(self, s: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """The update of eqs. 9–12 on scalars (N, F) and xyz-major vectors (N, 3, F)."""
        # U and V in one product; on xyz-major vectors a channel mixing is a plain
        # matrix product over the last axis (no permute-and-copy, as einsum does).
        weight = torch.cat([self.mix_u.weight, self.mix_v.weight])  # (2F, F)
        uv, vv = torch.split(nn.functional.linear(v, weight), self.width, dim=-1)
        norm = vector_norm(vv.transpose(-1, -2), self.norm_scale)  # (N, F)
        a = self.gate(torch.cat([s, norm], dim=-1))  # (N, 3F)
        a_vv, a_sv, a_ss = torch.split(a, self.width, dim=-1)
        s = s + a_ss + a_sv * (uv * vv).sum(dim=1)
        v = v + a_vv.unsqueeze(1) * uv
        return {F.NODE_FEATURES: self.layout.join(s, v.transpose(-1, -2))}
