"""DimeNet++: directional messages on edges with a distance x angle basis (body order 3).

Also home of the edge-state pieces GemNet reuses: :class:`EdgeState` (the DimeNet
embedding block ``m_ji = act(W [h_i, h_j, act(W_rbf e_ji)])``), :class:`ResidualLayer`,
and the memoised triplet data every layer shares (:mod:`geocompose.data.cache`): the
batch's :func:`layout` and :func:`reverse` edges, built once per batch, and the run's
:func:`triplet_harmonics` and :func:`spherical_radial` (the two halves of ``a_SBF``),
built once per run of the pipeline.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, NonNegativeInt
from torch import nn

from geocompose.nn.activations import Activation, activation
from geocompose.nn.block import Block, BuildContext, State, run_caches
from geocompose.nn.embedding.angular_basis import SphericalBesselRadial
from geocompose.nn.graph.higher_order import TripletLayout, reverse_edges, triplet_layout
from geocompose.nn.interaction.base import InteractionParams
from geocompose.nn.ops.message import EdgeView, aggregate
from geocompose.registry import Family, Group, Kind, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal, require, scalars
from geocompose.types import fields as F
from geocompose.types.bounds import Size

# What every edge-state block reads from upstream (node features are checked apart).
EDGE_INPUTS = (
    F.POSITIONS,
    F.EDGE_INDEX,
    F.EDGE_SHIFTS,
    F.EDGE_VECTORS,
    F.EDGE_LENGTHS,
    F.EDGE_RADIAL,
    F.EDGE_ENVELOPE,
)


def edge_state_signature(
    name: str, hidden: int, upstream, guarantee: Group
) -> Signature | TypeRefusal:
    """Shared typing rule: scalar node features in, node features and an edge state
    of ``hidden x 0e`` out; an upstream edge state (any width) is read when present."""
    reads: dict[str, FieldType] = {}
    for field in (F.NODE_FEATURES, *EDGE_INPUTS):
        found = require(upstream, field, name)
        if isinstance(found, TypeRefusal):
            return found
        reads[field] = found
    features = reads[F.NODE_FEATURES]
    if not features.is_scalar:
        return TypeRefusal(
            f"{name} reads {F.NODE_FEATURES} as 0e only; upstream gives {features.irreps}",
            "use an equivariant interaction, or an invariant projection before it",
        )
    if F.EDGE_FEATURES in upstream:
        state = upstream[F.EDGE_FEATURES]
        if not state.is_scalar or state.level is not Level.EDGE:
            return TypeRefusal(
                f"{name} reads {F.EDGE_FEATURES} as invariant edge scalars; upstream gives {state}",
                "put a block that writes scalar edge messages (dimenet_pp, gemnet_t) before it",
            )
        reads[F.EDGE_FEATURES] = state
    return Signature(
        reads=reads,
        writes={F.NODE_FEATURES: features, F.EDGE_FEATURES: scalars(hidden, Level.EDGE)},
        guarantee=guarantee,
    )


def rbf(state: State) -> torch.Tensor:
    """(E, R) radial basis times envelope: zero at the cutoff, so every use of an edge's
    message gated by a bias-free linear map of it vanishes there (smoothness)."""
    return state[F.EDGE_RADIAL] * state[F.EDGE_ENVELOPE]


def spherical_radial(basis: SphericalBesselRadial, state: State) -> torch.Tensor:
    """(E, L, n) ``j_l(z_ln d/c)`` times the envelope, shared by the layers of a run."""
    key = ("spherical_radial", basis.num_spherical, basis.num_radial, basis.cutoff)
    compute = lambda: basis(state[F.EDGE_LENGTHS]) * state[F.EDGE_ENVELOPE][:, :, None]
    return run_caches(state).per_run(key, compute)


def reverse(state: State) -> torch.Tensor:
    """(E,) each edge's reverse (-1 where none), built once per batch."""
    edge_index, num_nodes = state[F.EDGE_INDEX], state[F.POSITIONS].shape[0]
    compute = lambda: reverse_edges(edge_index, state[F.EDGE_SHIFTS], num_nodes)
    return run_caches(state).topology(edge_index, ("reverse", num_nodes), compute)


def layout(state: State) -> TripletLayout:
    """The batch's triplets k→j→i in their padded or sparse layout, built once per batch."""
    edge_index, num_nodes = state[F.EDGE_INDEX], state[F.POSITIONS].shape[0]
    compute = lambda: triplet_layout(
        edge_index, state[F.EDGE_SHIFTS], num_nodes, reverse=reverse(state)
    )
    return run_caches(state).topology(edge_index, ("triplet_layout", num_nodes), compute)


def triplet_harmonics(state: State, num_orders: int, order_major: bool = False) -> torch.Tensor:
    """``Y_l^0(angle k-j-i)`` of the batch's triplets (:meth:`TripletLayout.harmonics`),
    once per run however many layers read it."""
    triplets = layout(state)
    key = ("triplet_harmonics", num_orders, order_major and triplets.dense)
    compute = lambda: triplets.harmonics(state[F.EDGE_VECTORS], num_orders, order_major)
    return run_caches(state).per_run(key, compute)


class ResidualLayer(nn.Module):
    """``h + act(W2 act(W1 h))`` (DimeNet's residual layer)."""

    def __init__(self, width: int, act: Activation):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(width, width), activation(act), nn.Linear(width, width), activation(act)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.body(h)


class EdgeState(nn.Module):
    """The edge message a block starts from: DimeNet's embedding block
    ``m_ji = act(W [h_i, h_j, act(W_rbf e_ji)])`` when no block upstream wrote one, or
    a linear projection of the upstream ``edge_features`` when its width differs."""

    def __init__(self, upstream, node_dim: int, num_rbf: int, hidden: int, act: Activation):
        super().__init__()
        self.embed = F.EDGE_FEATURES not in upstream
        if self.embed:
            self.rbf = nn.Sequential(nn.Linear(num_rbf, hidden), activation(act))
            self.mix = nn.Sequential(nn.Linear(2 * node_dim + hidden, hidden), activation(act))
        else:
            width = upstream[F.EDGE_FEATURES].irreps.dim
            self.project = (
                nn.Identity() if width == hidden else nn.Linear(width, hidden, bias=False)
            )

    def forward(self, state: State, edges: EdgeView) -> torch.Tensor:
        if not self.embed:
            return self.project(state[F.EDGE_FEATURES])
        h = state[F.NODE_FEATURES]
        joined = [edges.gather_receivers(h), edges.gather_senders(h), self.rbf(rbf(state))]
        return self.mix(torch.cat(joined, dim=-1))  # (E, hidden)


class OutputBlock(nn.Module):
    """DimeNet's per-layer output: ``t_i = MLP(W_up sum_j (W_rbf e_ji) * m_ji)``."""

    def __init__(
        self, num_rbf: int, hidden: int, out_emb: int, layers: int, out_dim: int, act: Activation
    ):
        super().__init__()
        self.rbf = nn.Linear(num_rbf, hidden, bias=False)
        self.up = nn.Linear(hidden, out_emb, bias=False)
        self.mlp = nn.Sequential(
            *[m for _ in range(layers) for m in (nn.Linear(out_emb, out_emb), activation(act))]
        )
        self.out = nn.Linear(out_emb, out_dim, bias=False)

    def forward(self, state: State, edges: EdgeView, m: torch.Tensor) -> torch.Tensor:
        per_atom = aggregate(self.rbf(rbf(state)) * m, edges)  # (N, hidden)
        return self.out(self.mlp(self.up(per_atom)))


class DimeNetPPParams(InteractionParams):
    type: Literal["dimenet_pp"] = "dimenet_pp"
    hidden: Size = Field(default=32, description="edge message channels (PyG: 128)")
    int_emb: Size = Field(default=16, description="triplet channels (PyG: 64)")
    basis_emb: Size = Field(default=8, description="bottleneck of the 2D basis (PyG: 8)")
    out_emb: Size = Field(default=64, description="output block width (PyG: 256)")
    num_spherical: int = Field(default=7, ge=1, le=12, description="orders l of Y_l^0(angle)")
    num_radial: Size = Field(default=6, description="roots per order in a_SBF")
    num_before_skip: NonNegativeInt = 1
    num_after_skip: NonNegativeInt = 2
    num_output_layers: NonNegativeInt = 3
    activation: Activation = "silu"


@register(Kind.INTERACTION, family=Family.INVARIANT, body_order=3, group=Group.O3, smooth=True)
class DimeNetPPInteraction(Block):
    """DimeNet++ interaction with its output block (Gasteiger et al., "Fast and
    Uncertainty-Aware Directional Message Passing for Non-Equilibrium Molecules",
    NeurIPS-W 2020; DimeNet: ICLR 2020).

    Messages live on edges. For edge j→i, over triplets k→j→i (angle alpha at j):

    ``m_ji <- m_ji + R_after(act(W R_before(x_ji + act(W_up sum_k x_kj * (W2 W1
    a_SBF(d_kj, alpha)))))``, with ``x_ji = act(W_ji m_ji)``, ``x_kj = act(W_down(act(W_kj
    m_kj) * W_rbf2 W_rbf1 e_kj))`` and ``a_SBF = sqrt(2)/|j_{l+1}(z_ln)| j_l(z_ln d/c)
    Y_l^0(alpha) u(d)``. Output per block: ``h_i <- h_i + MLP(W_up sum_j (W e_ji) m_ji)``.

    The basis factorises (radial per edge kj, ``Y_l^0`` per triplet), so the sum over
    triplets is computed as ``sum_k sum_l Y_l(alpha) Z_kj,l`` with ``Z_kj,l = x_kj *
    W2 W1_l e_kj`` — the same function as DimeNet++'s Hadamard form, evaluated as one
    batched matmul over a padded neighbour layout where padding is cheap (no
    ``(T, int_emb)`` intermediates), else with ``scatter_sum`` over triplet chunks.

    The first block (no ``edge_features`` upstream) also runs DimeNet's embedding
    block and its output block. Node features accumulate the output blocks on top of
    the species embedding (DimeNet sums per-block atom outputs; with a linear ``sum``
    readout this is the same function class). Angles are only seen through
    ``Y_l^0 = sqrt((2l+1)/4pi) P_l(cos alpha)``: invariant under O(3).

    Signature: reads ``node_features: n x 0e``, edges, ``edge_radial``,
    ``edge_envelope`` (and ``edge_features`` when upstream wrote them) → writes
    ``node_features: n x 0e``, ``edge_features: hidden x 0e``.

    YAML: ``{type: dimenet_pp, hidden: 128, int_emb: 64, out_emb: 256, repeat: 4}``
    """

    Params = DimeNetPPParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        return edge_state_signature("dimenet_pp", params.hidden, upstream, Group.O3)

    def __init__(self, params: DimeNetPPParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        p, act = params, params.activation
        node_dim = self.irreps_in[F.NODE_FEATURES].dim
        num_rbf = self.irreps_in[F.EDGE_RADIAL].dim
        self.edge_state = EdgeState(upstream, node_dim, num_rbf, p.hidden, act)
        self.basis = SphericalBesselRadial(p.num_spherical, p.num_radial, ctx.cutoff)
        self.lin_ji = nn.Sequential(nn.Linear(p.hidden, p.hidden), activation(act))
        self.lin_kj = nn.Sequential(nn.Linear(p.hidden, p.hidden), activation(act))
        self.rbf_kj = nn.Sequential(
            nn.Linear(num_rbf, p.basis_emb, bias=False),
            nn.Linear(p.basis_emb, p.hidden, bias=False),
        )
        self.down = nn.Sequential(nn.Linear(p.hidden, p.int_emb, bias=False), activation(act))
        # W1: (L*n → basis_emb) kept as (L, n, basis_emb) so it applies per order l.
        self.sbf1 = nn.Parameter(
            torch.randn(p.num_spherical, p.num_radial, p.basis_emb)
            / (p.num_spherical * p.num_radial) ** 0.5
        )
        self.sbf2 = nn.Linear(p.basis_emb, p.int_emb, bias=False)
        self.up = nn.Sequential(nn.Linear(p.int_emb, p.hidden, bias=False), activation(act))
        self.before = nn.Sequential(
            *[ResidualLayer(p.hidden, act) for _ in range(p.num_before_skip)]
        )
        self.skip = nn.Sequential(nn.Linear(p.hidden, p.hidden), activation(act))
        self.after = nn.Sequential(*[ResidualLayer(p.hidden, act) for _ in range(p.num_after_skip)])
        make_output = lambda: OutputBlock(
            num_rbf, p.hidden, p.out_emb, p.num_output_layers, node_dim, act
        )
        self.output = make_output()
        self.first_output = make_output() if self.edge_state.embed else None

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        edges = EdgeView.from_state(state)
        m = self.edge_state(state, edges)  # (E, hidden)
        h = state[F.NODE_FEATURES]
        if self.first_output is not None:
            h = h + self.first_output(state, edges, m)
        x_ji = self.lin_ji(m)
        x_kj = self.down(self.lin_kj(m) * self.rbf_kj(rbf(state)))  # (E, int_emb)
        radial = spherical_radial(self.basis, state)  # (E, L, n)
        weights = self.sbf2(torch.einsum("eln,lnb->elb", radial, self.sbf1))  # (E, L, int_emb)
        angular = triplet_harmonics(state, self.params.num_spherical)
        x_kj = self.up(layout(state).contract(angular, x_kj[:, None, :] * weights))  # (E, hidden)
        m = self.after(self.skip(self.before(x_ji + x_kj)) + m)
        return {F.NODE_FEATURES: h + self.output(state, edges, m), F.EDGE_FEATURES: m}
