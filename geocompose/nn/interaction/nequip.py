"""NequIP's interaction (Batzner et al., Nat. Commun. 13, 2453, 2022) and the shared
point-convolution block that TFN reuses with other defaults.

One layer::

    m_ij  = TP_uvu(W_1 h_j, Y(r_ij); MLP(e(r_ij)) * u(r_ij))           (edge tensor product)
    a_i   = sum_j m_ij / sqrt(avg_neighbours)                          (the one aggregate)
    h_i'  = sigma( W_2 a_i + SC_{z_i}(h_i) )  (+ h_i when irreps agree)  (self-interaction)

with ``W_1``, ``W_2`` e3nn linears (self-interaction), ``SC`` a species-dependent linear
self-connection and ``sigma`` a gate: scalars through ``silu`` (``tanh`` for 0o), every
l > 0 irrep times ``sigmoid`` of its own extra scalar. Per-edge weights sit on a ``uvu``
product followed by the linear mix, never on a fully connected product (DESIGN.md:
3.7 s forward+backward at 10k edges for ``uvw`` with per-edge weights).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from e3nn import o3

from geocompose.nn.activations import Activation
from geocompose.nn.block import BuildContext, State
from geocompose.nn.interaction.base import MessagePassingInteraction
from geocompose.nn.interaction.spherical import (
    EdgeTensorProduct,
    SphericalParams,
    describe_plan,
    edge_guarantee,
    edge_plan,
    exact_constants,
    sorted_features,
    spherical_inputs,
)
from geocompose.nn.interaction.spherical_update import (
    Nonlinearity,
    SelfConnection,
    nonlinearity,
    nonlinearity_input,
    self_connection,
)
from geocompose.nn.ops.message import EdgeView
from geocompose.registry import Family, Group, Kind, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal
from geocompose.types import fields as F


class ConvolutionParams(SphericalParams):
    """Knobs of the point convolution (TFN, NequIP).

    Args:
        nonlinearity: ``gate`` (NequIP), ``norm`` (TFN) or ``none``.
        activation: the scalar activation.
        self_connection: ``species`` (a linear per species), ``linear`` or ``none``.
        residual: add the input when its irreps equal the written ones.
    """

    nonlinearity: Nonlinearity = "gate"
    activation: Activation = "silu"
    self_connection: SelfConnection = "species"
    residual: bool = True


class SphericalConvolution(MessagePassingInteraction):
    """The point convolution shared by TFN and NequIP (subclasses only register params).

    Signature: reads ``node_features`` (any irreps), ``edge_angular``, ``edge_radial``,
    ``edge_envelope``, ``edge_index``, ``species`` → writes ``node_features`` with the
    declared ``features`` (sorted by l, scalars first).
    """

    @classmethod
    def signature(cls, params: ConvolutionParams, upstream, ctx: BuildContext):
        reader = f"{params.type} ({ctx.knob})" if ctx.knob else params.type
        inputs = spherical_inputs(params, upstream, reader)
        if isinstance(inputs, TypeRefusal):
            return inputs
        target = sorted_features(params.features)
        plan = edge_plan(
            params,
            inputs.irreps_node,
            inputs.irreps_sh,
            nonlinearity_input(params.nonlinearity, target),
        )
        if isinstance(plan, TypeRefusal):
            return TypeRefusal(f"{reader}: {plan.message}", plan.hint)
        return Signature(
            reads=inputs.reads,
            writes={F.NODE_FEATURES: FieldType(target, Level.NODE)},
            guarantee=edge_guarantee(params),
            notes=describe_plan(plan),
        )

    def __init__(self, params: ConvolutionParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        inputs = spherical_inputs(params, upstream, params.type)
        with exact_constants():  # float64 Clebsch–Gordan constants; compile casts the model
            target = self.irreps_out[F.NODE_FEATURES]
            irreps_in = inputs.irreps_node
            self.act, irreps_pre = nonlinearity(params.nonlinearity, target, params.activation)
            plan = edge_plan(params, irreps_in, inputs.irreps_sh, irreps_pre)
            self.plan = plan
            self.linear_in = o3.Linear(
                irreps_in, irreps_in
            )  # W_1: mixes channels before the product
            self.conv = EdgeTensorProduct(
                plan,
                self.irreps_in[F.EDGE_RADIAL].dim,
                list(params.radial_hidden),
                params.radial_activation,
                params.tensor_product,
            )
            self.linear_out = o3.Linear(plan.irreps_out, irreps_pre)  # W_2: mixes the paths
            self.sc = self_connection(
                params.self_connection, irreps_in, irreps_pre, len(ctx.species)
            )
        self.residual = params.residual and irreps_in == target
        self.norm = 1.0 / math.sqrt(params.avg_neighbours)

    def message(self, state: State, edges: EdgeView) -> torch.Tensor:
        # Layout change at node level (N rows), before gathering onto E edges.
        senders = edges.gather_senders(self.conv.prepare(self.linear_in(state[F.NODE_FEATURES])))
        return self.conv(senders, state)

    def update(self, state: State, aggregated: torch.Tensor) -> dict[str, torch.Tensor]:
        x = state[F.NODE_FEATURES]
        y = self.linear_out(self.conv.finish(aggregated) * self.norm)  # (N, irreps_pre.dim)
        if self.sc is not None:
            y = y + self.sc(x, state[F.SPECIES])
        y = self.act(y)  # (N, features.dim)
        return {F.NODE_FEATURES: x + y if self.residual else y}


class NequIPParams(ConvolutionParams):
    type: Literal["nequip"] = "nequip"


@register(Kind.INTERACTION, family=Family.SPHERICAL, body_order=2, group=Group.O3)
class NequIPInteraction(SphericalConvolution):
    """NequIP interaction: uvu edge tensor product, self-interaction, gate (Batzner 2022).

    ``h_i' = Gate( W_2 sum_j TP_uvu(W_1 h_j, Y(r_ij); R(r_ij)) / sqrt(n) + SC_{z_i} h_i ) + h_i``

    Signature: reads ``node_features`` (any irreps; the first layer gets ``Fx0e`` from the
    embedding), ``edge_angular`` (needs ``embedding.angular``), ``edge_radial``,
    ``edge_envelope``, ``edge_index``, ``species`` → writes ``node_features: features``.
    O(3)-equivariant: every path obeys the parity rule and the gate only scales l > 0
    irreps by invariants.

    YAML::

        - {type: nequip, features: "32x0e + 16x1o + 8x2e", repeat: 3,
           tensor_product: {l_max: 2, paths: all, mode: uvu}}

    **The SO(2) implementation** (eSCN, Passaro & Zitnick, ICML 2023), for NequIP, TFN
    and MACE's A-basis: ``tensor_product: {implementation: so2}`` rotates each edge onto
    the polar axis, where its harmonics vanish except at ``m = 0`` and the product is a
    2x2 block ``a I + b J`` per ``|m|`` (O(L^3) per channel instead of O(L^5)), then
    rotates back (``geocompose.nn.ops.so2``). The paths that differ only in ``l2`` are
    summed into one output segment (fewer inputs to ``W_2``); with the same per-path
    weights the messages equal the Clebsch–Gordan product of those summed paths to 1e-12
    in float64, gradients and edges along the poles included (tests/unit/nn/ops/test_so2.py),
    and the verifier proves the model O(3): parity is tracked by the paths (each
    ``(l1, l3)`` segment sums only the ``l2`` of the right parity) and the rotations are
    proper (``blueprints/escn.yaml``). On this 2-core CPU it is not faster at
    ``l_max <= 6`` (docs/benchmarks.md, benchmarks/so2_crossover.py).

    ``relaxation: eps`` (``so2`` only; SCN-style relaxed equivariance) adds, on every
    block ``m >= 1``, ``eps`` times per-edge weights on the two 2x2 maps that do *not*
    commute with rotations about the edge (``diag(1, -1)`` and ``[[0, 1], [1, 0]]``).
    At 0 those weights do not exist and the block is exact; above 0 it guarantees
    nothing, so a blueprint claims the group through an approximate strategy and the
    verifier measures the error (``blueprints/escn-relaxed.yaml``, with augmentation).
    Measured by benchmarks/so2_relaxation.py on escn-relaxed (3 layers, seed 0, float64,
    largest relative error of energies and forces over 2 molecules, 2 cells and fixed
    cases): rotation 7.2e-15 at 0 (proven), 1.1e-6 at 1e-4, 1.1e-5 at 1e-3, 1.1e-4 at
    0.01, 5.7e-4 at 0.05, 1.1e-3 at 0.1, 3.4e-3 at 0.3, 1.1e-2 at 1 (reflection about
    1.5 times that): first order in ``eps``, at these random initial weights. The
    relaxation reaches the energy only through a middle layer: the first sees scalars
    only, and scalar outputs have no ``m >= 1`` block. YAML::

        - {type: nequip, features: "16x0e + 8x1o + 4x2e + 2x3o", repeat: 3,
           tensor_product: {l_max: 3, implementation: so2, relaxation: 0.05}}
    """

    Params = NequIPParams
