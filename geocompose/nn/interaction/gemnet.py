"""GemNet-T (triplets, body order 3) and GemNet-Q (quadruplets with torsions, order 4).

GemNet (Gasteiger, Becker, Günnemann, "GemNet: Universal Directional Graph Neural
Networks for Molecules", NeurIPS 2021) keeps DimeNet's edge messages and adds an
atom embedding updated from them, an atom-to-edge update, a bilinear triplet layer
and, in GemNet-Q, an interaction over quadruplets that sees dihedral angles.

Simplified here, precisely:

* **Triplets** use DimeNet's 2D basis ``j_l(z_ln d_kj / c) Y_l^0(angle kji)``; the
  triplet sum keeps the order axis, ``A_ji[l, c] = sum_k Y_l(angle) x_kj,c R_kj,l,c``,
  and a bilinear layer mixes ``(l, c)`` (GemNet's "efficient bilinear" form), instead
  of GemNet's separate radial/angular embedding sizes and its symmetric message
  update (``m_ca`` and ``m_ac`` together).
* **Quadruplets** l→k→j→i use a product basis of Legendre polynomials of the angle
  k-j-i and torsion harmonics ``{1, Re z^m, Im z^m}`` with ``z = sin t_lkj sin t_kji
  e^{i phi}`` (the m-dependence of GemNet's ``Y_l^m(theta, phi)``, see
  ``angular_basis.torsion_harmonics``), projected to per-quadruplet weights on the
  outer edge's message ``x_lk``, summed onto ``ji`` with ``scatter_sum``. Only chains
  of edges shorter than ``torsion_cutoff`` count (GemNet also uses a separate
  quadruplet cutoff), each weighted by a polynomial envelope of all three lengths so
  the energy stays smooth. GemNet's second spherical basis over ``d_kj`` is dropped.
* **Outputs**: GemNet sums per-block energy heads; here the atom embedding
  ``node_features`` accumulates every block (residual updates) and the blueprint's
  ``sum`` readout is the single head. No scaling-factor fitting, no direct forces.

``gemnet_q`` reads the *signed* torsion (``Im z^m`` contains the triple product
``u1 . (u2 x u3)``): it tells mirror images apart and guarantees SO(3) only.
``gemnet_q_unsigned`` keeps ``Re z^m`` (``cos m phi``), which is reflection-even: O(3).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, NonNegativeInt
from torch import nn

from geocompose.nn.activations import Activation, activation
from geocompose.nn.block import Block, BuildContext, State, run_caches
from geocompose.nn.embedding.angular_basis import (
    SphericalBesselRadial,
    legendre,
    torsion_harmonics,
    unit,
)
from geocompose.nn.embedding.envelope import polynomial_envelope
from geocompose.nn.graph.higher_order import quadruplet_index
from geocompose.nn.interaction.base import InteractionParams
from geocompose.nn.interaction.dimenet import (
    EdgeState,
    ResidualLayer,
    edge_state_signature,
    layout,
    rbf,
    reverse,
    spherical_radial,
    triplet_harmonics,
)
from geocompose.nn.ops.message import EdgeView, aggregate
from geocompose.nn.ops.scatter import scatter_sum
from geocompose.registry import Family, Group, Kind, register
from geocompose.types import fields as F
from geocompose.types.bounds import Cutoff, Size

INV_SQRT2 = 1.0 / math.sqrt(2.0)
TORSION_ENVELOPE_P = 6  # order of the polynomial envelope at torsion_cutoff (DimeNet's p)


class GemNetTParams(InteractionParams):
    type: Literal["gemnet_t"] = "gemnet_t"
    hidden: Size = Field(default=32, description="edge message channels (GemNet: 512)")
    int_emb: Size = Field(default=16, description="triplet channels (GemNet: 64)")
    num_spherical: int = Field(default=7, ge=1, le=12, description="orders l of Y_l^0(angle)")
    num_radial: Size = Field(default=6, description="roots per order in the 2D basis")
    num_before_skip: NonNegativeInt = 1
    num_after_skip: NonNegativeInt = 2
    num_atom_layers: NonNegativeInt = Field(
        default=2, description="residual layers of the atom update"
    )
    activation: Activation = "silu"


class TripletBilinear(nn.Module):
    """``act(W_bil vec_{l,c} sum_k Y_l(angle kji) x_kj,c R_kj,l,c)`` → (E, hidden)."""

    def __init__(self, p: GemNetTParams, num_rbf: int, cutoff: float):
        super().__init__()
        act = p.activation
        self.kj = nn.Sequential(nn.Linear(p.hidden, p.hidden), activation(act))
        self.rbf = nn.Linear(num_rbf, p.hidden, bias=False)
        self.down = nn.Sequential(nn.Linear(p.hidden, p.int_emb, bias=False), activation(act))
        self.basis = SphericalBesselRadial(p.num_spherical, p.num_radial, cutoff)
        self.radial = nn.Parameter(
            torch.randn(p.num_spherical, p.num_radial, p.int_emb) / p.num_radial**0.5
        )
        self.bilinear = nn.Sequential(
            nn.Linear(p.num_spherical * p.int_emb, p.hidden, bias=False), activation(act)
        )
        self.num_spherical = p.num_spherical

    def forward(self, state: State, m: torch.Tensor) -> torch.Tensor:
        x = self.down(self.kj(m) * self.rbf(rbf(state)))  # (E, int_emb), zero at the cutoff
        filters = torch.einsum(
            "eln,lnc->elc", spherical_radial(self.basis, state), self.radial
        )  # (E, L, C)
        angular = triplet_harmonics(state, self.num_spherical, order_major=True)
        values = x[:, None, :] * filters  # (E, L, C)
        summed = layout(state).contract(angular, values, per_order=True)  # (E, L, C)
        return self.bilinear(summed.flatten(1))


@register(Kind.INTERACTION, family=Family.INVARIANT, body_order=3, group=Group.O3, smooth=True)
class GemNetTInteraction(Block):
    """GemNet-T interaction: triplet messages, atom update, atom-to-edge update.

    For edge j→i with message ``m_ji`` and atom embeddings ``h``:

    ``m_ji <- (m_ji + R_after(act(W R_before(act(W m_ji) + T_ji))))/sqrt2`` with the
    triplet term ``T_ji = act(W_bil vec_{l,c} sum_{k} Y_l^0(angle kji) x_kj,c
    (W_l j_l(z_ln d_kj/c) u(d_kj))_c)``; then ``h_i <- (h_i + MLP(sum_j (W e_ji)
    m_ji))/sqrt2`` and ``m_ji <- (m_ji + act(W [h_i, h_j, m_ji]))/sqrt2``.
    Distances and bond angles only: body order 3, O(3)-invariant. Simplifications
    against the paper are listed in the module docstring.

    Signature: reads ``node_features: n x 0e``, edges, ``edge_radial``,
    ``edge_envelope`` (and ``edge_features`` when upstream wrote them) → writes
    ``node_features: n x 0e``, ``edge_features: hidden x 0e``.

    YAML: ``{type: gemnet_t, hidden: 64, int_emb: 16, repeat: 3}``
    """

    Params = GemNetTParams
    group = Group.O3

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        return edge_state_signature(params.type, params.hidden, upstream, cls.group)

    def __init__(self, params: GemNetTParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        p, act = params, params.activation
        node_dim = self.irreps_in[F.NODE_FEATURES].dim
        num_rbf = self.irreps_in[F.EDGE_RADIAL].dim
        self.edge_state = EdgeState(upstream, node_dim, num_rbf, p.hidden, act)
        self.lin_ji = nn.Sequential(nn.Linear(p.hidden, p.hidden), activation(act))
        self.triplet = TripletBilinear(p, num_rbf, ctx.cutoff)
        self.before = nn.Sequential(
            *[ResidualLayer(p.hidden, act) for _ in range(p.num_before_skip)]
        )
        self.skip = nn.Sequential(nn.Linear(p.hidden, p.hidden), activation(act))
        self.after = nn.Sequential(*[ResidualLayer(p.hidden, act) for _ in range(p.num_after_skip)])
        self.atom_rbf = nn.Linear(num_rbf, p.hidden, bias=False)
        self.atom = nn.Sequential(
            nn.Linear(p.hidden, node_dim),
            activation(act),
            *[ResidualLayer(node_dim, act) for _ in range(p.num_atom_layers)],
        )
        self.to_edge = nn.Sequential(nn.Linear(2 * node_dim + p.hidden, p.hidden), activation(act))

    def higher_order(self, state: State, m: torch.Tensor) -> torch.Tensor | float:
        """Extra terms of the edge update beyond triplets (GemNet-Q's quadruplets)."""
        return 0.0

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        edges = EdgeView.from_state(state)
        m = self.edge_state(state, edges)  # (E, hidden)
        update = self.lin_ji(m) + self.triplet(state, m) + self.higher_order(state, m)
        m = INV_SQRT2 * (m + self.after(self.skip(self.before(update))))
        h = state[F.NODE_FEATURES]
        h = INV_SQRT2 * (h + self.atom(aggregate(self.atom_rbf(rbf(state)) * m, edges)))
        joined = torch.cat([edges.gather_receivers(h), edges.gather_senders(h), m], dim=-1)
        m = INV_SQRT2 * (m + self.to_edge(joined))
        return {F.NODE_FEATURES: h, F.EDGE_FEATURES: m}


class GemNetQParams(GemNetTParams):
    type: Literal["gemnet_q"] = "gemnet_q"
    quad_emb: Size = Field(default=8, description="quadruplet channels (GemNet: 32)")
    torsion_cutoff: Cutoff = Field(
        default=3.0,
        description="all three edges of a chain are shorter (Å)",
    )
    torsion_order: int = Field(
        default=2, ge=1, le=8, description="harmonics m = 1..order of the dihedral"
    )
    angle_order: int = Field(
        default=3, ge=1, le=8, description="Legendre orders of the angle k-j-i"
    )


class QuadrupletInteraction(nn.Module):
    """``act(W_up sum_{l,k} x_lk * W_q B(angle kji, phi_lkji) u_t(d_lk) u_t(d_kj) u_t(d_ji))``."""

    def __init__(self, p: GemNetQParams, num_rbf: int, signed: bool):
        super().__init__()
        act = p.activation
        self.signed = signed
        self.lk = nn.Sequential(nn.Linear(p.hidden, p.hidden), activation(act))
        self.rbf = nn.Linear(num_rbf, p.hidden, bias=False)
        self.down = nn.Sequential(nn.Linear(p.hidden, p.quad_emb, bias=False), activation(act))
        width = p.angle_order * (1 + p.torsion_order * (2 if signed else 1))
        self.weights = nn.Linear(width, p.quad_emb, bias=False)
        self.up = nn.Sequential(nn.Linear(p.quad_emb, p.hidden, bias=False), activation(act))
        self.cutoff, self.torsion_order, self.angle_order = (
            p.torsion_cutoff,
            p.torsion_order,
            p.angle_order,
        )

    def quadruplets(self, state: State) -> torch.Tensor:
        """(3, Q) chains ``[lk, kj, ji]`` of short edges, built once per batch (its
        positions, hence which edges are short, are fixed; frames only rotate them)."""
        edge_index, shifts = state[F.EDGE_INDEX], state[F.EDGE_SHIFTS]
        n = state[F.POSITIONS].shape[0]

        def build():
            reverse_of = reverse(state)
            short = state[F.EDGE_LENGTHS].detach().flatten() < self.cutoff
            triplets = layout(state)
            return quadruplet_index(
                edge_index,
                shifts,
                n,
                torch.stack([triplets.kj, triplets.ji]),
                short,
                reverse=reverse_of,
            )

        key = ("quadruplets", n, self.cutoff)
        return run_caches(state).topology(edge_index, key, build)

    def basis(self, state: State, quads: torch.Tensor) -> torch.Tensor:
        """(Q, width) angle x torsion basis times the torsion envelopes, once per run."""

        def compute():
            lk, kj, ji = quads
            u = unit(state[F.EDGE_VECTORS])  # (E, 3), receiver → sender
            b1, b2, b3 = -u[lk], -u[kj], -u[ji]  # bond directions l→k, k→j, j→i
            torsion = torsion_harmonics(b1, b2, b3, self.torsion_order, self.signed)
            torsion = torch.cat([torch.ones_like(torsion[:, :1]), torsion], dim=-1)  # (Q, 1 + M')
            angle = legendre(self.angle_order - 1, -(b2 * b3).sum(-1))  # cos of the angle k-j-i
            env = polynomial_envelope(state[F.EDGE_LENGTHS], self.cutoff, TORSION_ENVELOPE_P)
            weight = env[lk] * env[kj] * env[ji]  # (Q, 1)
            return (angle[:, :, None] * torsion[:, None, :]).flatten(1) * weight

        key = ("quadruplet_basis", self.cutoff, self.torsion_order, self.angle_order, self.signed)
        return run_caches(state).per_run(key, compute)

    def forward(self, state: State, m: torch.Tensor) -> torch.Tensor:
        quads = self.quadruplets(state)
        x = self.down(self.lk(m) * self.rbf(rbf(state)))  # (E, quad_emb)
        messages = x[quads[0]] * self.weights(self.basis(state, quads))  # (Q, quad_emb)
        return self.up(scatter_sum(messages, quads[2], m.shape[0]))


@register(Kind.INTERACTION, family=Family.INVARIANT, body_order=4, group=Group.SO3, smooth=True)
class GemNetQInteraction(GemNetTInteraction):
    """GemNet-Q interaction: GemNet-T plus quadruplets l→k→j→i with *signed* torsions.

    Adds to the edge update ``Q_ji = act(W_up sum_{k,l} x_lk * W_q [P_a(cos t_kji)
    {1, Re z^m, Im z^m}] u_t(d_lk) u_t(d_kj) u_t(d_ji))`` with ``z = sin t_lkj sin
    t_kji e^{i phi_lkji}`` and ``u_t`` a polynomial envelope at ``torsion_cutoff``.
    ``Im z^m`` is odd under reflection, so the block is chiral: registered and typed
    SO(3), and a blueprint using it must claim SO(3) (the verifier shows it fails
    reflections). Body order 4.

    Signature: as ``gemnet_t``, guarantee SO(3).

    YAML: ``{type: gemnet_q, hidden: 32, torsion_cutoff: 3.0, torsion_order: 2}``
    """

    Params = GemNetQParams
    group = Group.SO3
    signed = True

    def __init__(self, params: GemNetQParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        self.quadruplet = QuadrupletInteraction(
            params, self.irreps_in[F.EDGE_RADIAL].dim, self.signed
        )

    def higher_order(self, state: State, m: torch.Tensor) -> torch.Tensor:
        return self.quadruplet(state, m)


class GemNetQUnsignedParams(GemNetQParams):
    type: Literal["gemnet_q_unsigned"] = "gemnet_q_unsigned"


@register(Kind.INTERACTION, family=Family.INVARIANT, body_order=4, group=Group.O3, smooth=True)
class GemNetQUnsignedInteraction(GemNetQInteraction):
    """GemNet-Q with *unsigned* torsions: only ``Re z^m = sin^m t1 sin^m t2 cos(m phi)``.

    Even under reflection, so O(3)-invariant and blind to chirality (a molecule and
    its mirror image get equal energies). Body order 4.

    Signature: as ``gemnet_t``, guarantee O(3).

    YAML: ``{type: gemnet_q_unsigned, hidden: 32, torsion_cutoff: 3.0}``
    """

    Params = GemNetQUnsignedParams
    group = Group.O3
    signed = False
