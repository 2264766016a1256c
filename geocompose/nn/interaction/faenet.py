"""Unconstrained blocks: they read raw Cartesian components, so symmetry must come from
a strategy around the model (frame averaging, canonicalisation, augmentation)."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from geocompose.nn.activations import Activation, activation, mlp
from geocompose.nn.block import Block, BuildContext, State
from geocompose.nn.interaction.base import InteractionParams, MessagePassingInteraction
from geocompose.nn.ops.message import EdgeView
from geocompose.nn.ops.scatter import scatter_mean
from geocompose.registry import Family, Group, Kind, register
from geocompose.types import Signature, TypeRefusal
from geocompose.types import fields as F
from geocompose.types.bounds import Size
from geocompose.types.signature import require_all, require_scalar


def _scalar_reads(upstream, names, reader):
    reads = require_all(upstream, names, reader)
    if isinstance(reads, TypeRefusal):
        return reads
    hint = "place it before equivariant blocks, or project to scalars first"
    return require_scalar(reads, F.NODE_FEATURES, reader, hint) or reads


class GraphNorm(nn.Module):
    """GraphNorm (Cai et al., ICML 2021), per structure and channel::

        y = gamma * (x - alpha * mean(x)) / sqrt(mean((x - alpha * mean(x))^2) + eps) + beta

    with means over the structure's atoms and learned ``alpha`` (init 1), ``gamma`` (1)
    and ``beta`` (0), eps 1e-5, as FAENet uses it after aggregation (its ``graph_norm``).
    Per structure, so batching and frame copies never mix statistics; but within a
    structure every atom's update now depends on all its atoms (the mean and spread), so
    the energy is no longer a sum of local terms (two distant molecules in one cell
    interact through it), as in FAENet.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.alpha = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, batch: torch.Tensor, num_structures: int) -> torch.Tensor:
        centred = x - self.alpha * scatter_mean(x, batch, num_structures)[batch]  # (N, C)
        var = scatter_mean(centred**2, batch, num_structures)[batch]  # (N, C)
        return self.gamma * centred / torch.sqrt(var + self.eps) + self.beta


class FAENetParams(InteractionParams):
    type: Literal["faenet"] = "faenet"
    hidden: Size = 64
    activation: Activation = "silu"
    graph_norm: bool = Field(
        False,
        description="GraphNorm (then the activation) on the aggregated messages, as FAENet's "
        "graph_norm (its default); it lifts per-atom differences to unit size, which the "
        "sum over atoms otherwise leaves at ~1e-4 (docs/expressivity.md)",
    )


@register(Kind.INTERACTION, family=Family.UNCONSTRAINED, body_order=2, group=Group.NONE)
class FAENetInteraction(MessagePassingInteraction):
    """FAENet's message passing (Duval et al., ICML 2023): the edge embedding is an MLP
    of the radial basis *and the raw relative position vector* r_ij (its three Cartesian
    components as plain numbers), so the block is free of architectural constraints::

        e_ij = MLP_e([e(r_ij), r_ij]),   m_ij = MLP_m(h_j) * e_ij * u(r_ij),
        h_i <- h_i + MLP_u(sum_j m_ij)      or, with ``graph_norm``,
        h_i <- h_i + MLP_u(act(GraphNorm(sum_j m_ij)))

    It guarantees nothing (group ``none``); wrapped in frame averaging it is exactly
    O(3)/SO(3)-equivariant, under stochastic frame averaging approximately.

    YAML: ``{type: faenet, hidden: 64, repeat: 3, graph_norm: true}`` with
    ``strategy: frame_averaging``
    """

    Params = FAENetParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        names = (F.NODE_FEATURES, F.EDGE_INDEX, F.EDGE_VECTORS, F.EDGE_RADIAL, F.EDGE_ENVELOPE)
        # GraphNorm's statistics are per structure: it reads which atom is in which.
        reads = _scalar_reads(
            upstream, names + ((F.BATCH, F.CELL) if params.graph_norm else ()), "faenet"
        )
        if isinstance(reads, TypeRefusal):
            return reads
        return Signature(
            reads=reads,
            writes={F.NODE_FEATURES: reads[F.NODE_FEATURES]},
            guarantee=Group.NONE,
            extensive=not params.graph_norm,  # GraphNorm's statistics couple a structure's atoms
        )

    def __init__(self, params: FAENetParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        width = self.irreps_in[F.NODE_FEATURES].dim
        radial = self.irreps_in[F.EDGE_RADIAL].dim
        self.edge = mlp([radial + 3, params.hidden, params.hidden], params.activation)
        self.node = nn.Linear(width, params.hidden)
        self.update_mlp = mlp([params.hidden, width, width], params.activation)
        self.norm = GraphNorm(params.hidden) if params.graph_norm else None
        self.norm_act = activation(params.activation)

    def message(self, state: State, edges: EdgeView) -> torch.Tensor:
        edge = self.edge(torch.cat([state[F.EDGE_RADIAL], state[F.EDGE_VECTORS]], dim=-1))
        return (
            edges.gather_senders(self.node(state[F.NODE_FEATURES])) * edge * state[F.EDGE_ENVELOPE]
        )

    def update(self, state: State, aggregated: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.norm is not None:  # aggregated: (N, hidden)
            aggregated = self.norm_act(
                self.norm(aggregated, state[F.BATCH], state[F.CELL].shape[0])
            )
        return {F.NODE_FEATURES: state[F.NODE_FEATURES] + self.update_mlp(aggregated)}


class CoordinateMLPParams(InteractionParams):
    type: Literal["coordinate_mlp"] = "coordinate_mlp"
    hidden: Size = 32
    activation: Activation = "silu"


@register(
    Kind.INTERACTION, family=Family.UNCONSTRAINED, body_order=1, group=Group.NONE, periodic=False
)
class CoordinateMLP(Block):
    """The plainest unconstrained network: ``h_i <- h_i + MLP([h_i, x_i])`` on each atom's
    raw Cartesian coordinates. No symmetry at all, not even translation — the test case
    for "any network, made symmetric" by a strategy. Periodic images are out of reach of
    a network that reads absolute positions, so pair it with a molecular graph.

    YAML: ``{type: coordinate_mlp, hidden: 32}``
    """

    Params = CoordinateMLPParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        reads = _scalar_reads(upstream, (F.NODE_FEATURES, F.POSITIONS), "coordinate_mlp")
        if isinstance(reads, TypeRefusal):
            return reads
        return Signature(
            reads=reads, writes={F.NODE_FEATURES: reads[F.NODE_FEATURES]}, guarantee=Group.NONE
        )

    def __init__(self, params: CoordinateMLPParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        width = self.irreps_in[F.NODE_FEATURES].dim
        self.net = mlp([width + 3, params.hidden, width], params.activation)

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        h = state[F.NODE_FEATURES]
        return {F.NODE_FEATURES: h + self.net(torch.cat([h, state[F.POSITIONS]], dim=-1))}
