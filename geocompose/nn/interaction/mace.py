"""MACE (Batatia et al., NeurIPS 2022): higher-order messages by a symmetric contraction.

One layer::

    A_i      = W_A sum_j TP_uvu(W_up h_j, Y(r_ij); MLP(e(r_ij)) * u(r_ij)) / avg_neighbours
    B_i,k,LM = sum_{nu=1}^{correlation} sum_{eta} W^{nu}_{z_i,k,eta} (A_i,k (x) ... (x) A_i,k)^{nu}_{eta,LM}
    h_i'     = W_out B_i + SC_{z_i}(h_i)

(with ``a_norm``, ``A_i`` is first normalised over its structure's atoms: StructureNorm)

``A`` is the one-particle basis (channels ``k`` x the harmonics' irreps), ``B`` the
many-body basis: every ``nu``-fold channel-wise Clebsch–Gordan product of ``A`` with
itself coupled to each written irrep, with weights per species ``z``, channel ``k`` and
coupling path ``eta``. The products are ``uuu`` plans of
:func:`~geocompose.nn.ops.paths.enumerate_paths` (run as one dense coupling matrix per
order: :mod:`~geocompose.nn.interaction.mace_contraction`), one order at a time (``P^nu = P^{nu-1} (x) A``), pruning couplings that can no longer
reach a written irrep and, at ``nu = 2``, the duplicates and the antisymmetric
couplings of ``A_k (x) A_k`` that vanish identically. The basis is therefore
overcomplete for ``nu >= 3`` (MACE's generalised Clebsch–Gordan ``U`` tensors are
not used): exact and equivariant, but with more weights than mace-torch for the same
hyperparameters.
"""

from __future__ import annotations

from typing import Literal

import torch
from e3nn import o3
from pydantic import Field
from torch import nn

from geocompose.nn.block import BuildContext, State
from geocompose.nn.interaction.base import MessagePassingInteraction
from geocompose.nn.interaction.mace_contraction import (
    MAX_CONTRACTION_COEFFICIENTS,
    SymmetricContraction,
    contraction_coefficients,
    contraction_levels,
)
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
from geocompose.nn.interaction.spherical_update import SelfConnection, self_connection
from geocompose.nn.ops.message import EdgeView
from geocompose.nn.ops.scatter import scatter_mean
from geocompose.registry import Family, Group, Kind, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal, require, scalars
from geocompose.types import fields as F
from geocompose.types.irreps import IrrepsField


class StructureNorm(nn.Module):
    """Equivariant normalisation of ``A`` per structure and channel (``a_norm``)::

        a_c <- w_c (a_c - [0e] mean(a_c)) / sqrt(mean(|a_c|^2 / (2l + 1)) + eps) + [0e] b_c

    with means over the structure's atoms, ``w`` init 1, ``b`` init 0, eps 1e-5: the
    statistics of e3nn's ``BatchNorm`` (component normalisation) that the paper's MACE
    (Joshi et al., ICML 2023, geometric-gnn-dojo) applies after its convolution, taken
    over one structure as its training (batch size 1) does. As FAENet's GraphNorm, each
    atom's ``A`` then depends on all atoms of its structure (not a sum of local terms).

    Args:
        irreps: the A-basis.
        eps: added to the mean square.
    """

    def __init__(self, irreps: o3.Irreps, eps: float = 1e-5):
        super().__init__()
        self.irreps, self.eps = irreps, eps
        num_scalars = sum(mul for mul, ir in irreps if ir == o3.Irrep("0e"))
        self.weight = nn.Parameter(torch.ones(irreps.num_irreps))
        self.bias = nn.Parameter(torch.zeros(num_scalars))

    def forward(self, x: torch.Tensor, batch: torch.Tensor, num_structures: int) -> torch.Tensor:
        n, out, w, b = x.shape[0], [], 0, 0
        for sl, (mul, ir) in zip(self.irreps.slices(), self.irreps):
            f = x[:, sl].reshape(n, mul, ir.dim)  # (N, mul, 2l+1)
            scalar = ir == o3.Irrep("0e")  # only true scalars are shifted (a 0o mean is odd)
            if scalar:
                mean = scatter_mean(f[..., 0], batch, num_structures)  # (B, mul)
                f = f - mean[batch].unsqueeze(-1)
            ms = scatter_mean(f.pow(2).mean(-1), batch, num_structures)[batch]  # (N, mul)
            f = f * (self.weight[w : w + mul] / torch.sqrt(ms + self.eps)).unsqueeze(-1)
            if scalar:
                f = f + self.bias[b : b + mul].unsqueeze(-1)
                b += mul
            w += mul
            out.append(f.reshape(n, mul * ir.dim))
        return torch.cat(out, dim=-1)


class MACEParams(SphericalParams):
    """Knobs of the MACE layer.

    Args:
        features: written irreps; every irrep needs the same multiplicity ``K`` (channels).
        correlation: order ``nu`` of the symmetric contraction, 1..4 (body order ``nu + 1``).
        self_connection: ``species`` (MACE's element-dependent skip), ``linear`` or ``none``.
        a_norm: normalise ``A`` per structure (:class:`StructureNorm`), as the paper's
            MACE does with e3nn BatchNorm; default off (mace-torch has none).
        layer_readout: read an energy term out of this layer, as MACE sums a readout
            of every layer (``E_i = sum_t R_t(h_i^(t))``).
    """

    type: Literal["mace"] = "mace"
    features: IrrepsField = Field(default="16x0e + 16x1o", validate_default=True)
    correlation: int = Field(default=3, ge=1, le=4)
    self_connection: SelfConnection = "species"
    a_norm: bool = Field(
        False,
        description="normalise the A-basis per structure and channel (e3nn BatchNorm "
        "statistics over one structure), as Joshi et al.'s MACE; without it A is ~1e-3 and "
        "the products of A's that separate k-chains are ~1e-12 of the features "
        "(docs/expressivity.md)",
    )
    layer_readout: bool = Field(
        False,
        description="write a linear function of this layer's 0e channels, added to the "
        "layer_energy of earlier layers, for a readout with layer_energy: true (the "
        "paper's and mace-torch's readout of every layer; 3-seed force MAE, meV/Å: "
        "EMT Cu 32.7 -> 29.2, biphenyl 156.7 -> 143.9, ethanol 46.4 -> 51.7, "
        "docs/benchmarks.md)",
    )


@register(Kind.INTERACTION, family=Family.SPHERICAL, group=Group.O3)
class MACEInteraction(MessagePassingInteraction):
    """MACE layer: A-basis by a uvu edge tensor product, B-basis by a symmetric contraction
    of order ``correlation`` with per-species weights, linear update plus self-connection.

    ``h_i' = W_out sum_nu W^nu_{z_i} (A_i (x) ... (x) A_i)^nu + SC_{z_i} h_i``

    Body order ``correlation + 1`` per layer. Signature: reads ``node_features`` (any
    irreps), ``edge_angular`` (needs ``embedding.angular``), ``edge_radial``,
    ``edge_envelope``, ``edge_index``, ``species`` (and ``batch``, ``cell`` with
    ``a_norm``) → writes ``node_features: features`` (uniform multiplicity).
    O(3)-equivariant.

    ``tensor_product: {implementation: so2}`` builds the A-basis with the SO(2) edge
    product (eSCN), as for ``nequip`` (see there, with its ``relaxation``).

    YAML::

        - {type: mace, features: "32x0e + 32x1o", correlation: 3, repeat: 2,
           tensor_product: {l_max: 2}}
    """

    Params = MACEParams

    @staticmethod
    def plan(params: MACEParams, upstream, reader: str):
        """(inputs, target, irreps_a, edge plan) or a refusal; pure."""
        inputs = spherical_inputs(params, upstream, reader)
        if isinstance(inputs, TypeRefusal):
            return inputs
        if params.a_norm:  # StructureNorm's statistics are per structure
            for name in (F.BATCH, F.CELL):
                found = require(upstream, name, reader)
                if isinstance(found, TypeRefusal):
                    return found
                inputs.reads[name] = found
        target = sorted_features(params.features)
        muls = {mul for mul, _ in target}
        if len(muls) != 1:
            return TypeRefusal(
                f"{reader} contracts channel by channel, so every irrep of features needs the same "
                f"multiplicity; got {target}",
                "write e.g. features: '32x0e + 32x1o'",
            )
        k = muls.pop()
        irreps_a = o3.Irreps([(k, ir) for _, ir in inputs.irreps_sh]).simplify()
        plan = edge_plan(params, inputs.irreps_node, inputs.irreps_sh, irreps_a)
        if isinstance(plan, TypeRefusal):
            return TypeRefusal(f"{reader}: {plan.message}", plan.hint)
        # The A-basis holds only the irreps the edge product reaches.
        reached = {p.ir_out for p in plan.paths}
        irreps_a = o3.Irreps([(mul, ir) for mul, ir in irreps_a if ir in reached])
        levels = contraction_levels(irreps_a, [ir for _, ir in target], params.correlation)
        coefficients = contraction_coefficients(irreps_a, levels)
        if coefficients > MAX_CONTRACTION_COEFFICIENTS:
            couplings = sum(len(lev.couplings) for lev in levels)
            return TypeRefusal(
                f"{reader}: the symmetric contraction of A = {irreps_a.simplify()} up to "
                f"correlation {params.correlation} has {couplings:,} couplings with "
                f"{coefficients:,} Clebsch-Gordan coefficients, more than the "
                f"{MAX_CONTRACTION_COEFFICIENTS:,} geocompose builds (it would take minutes "
                "and gigabytes before the first step)",
                "lower correlation or tensor_product.l_max (MACE uses l_max 3, correlation 3)",
            )
        made = {ir for lev in levels for _, ir in lev.irreps}
        missing = [str(ir) for _, ir in target if ir not in made]
        if missing:
            return TypeRefusal(
                f"{reader} writes {', '.join(missing)}, which no product of A = {irreps_a.simplify()} "
                f"up to correlation {params.correlation} reaches",
                "raise correlation (A_k (x) A_k is symmetric, so 1o x 1o -> 1e vanishes: 1e and 0o need "
                "correlation 3), raise tensor_product.l_max, or drop those irreps",
            )
        return inputs, target, irreps_a, plan

    @classmethod
    def signature(cls, params: MACEParams, upstream, ctx: BuildContext):
        reader = f"mace ({ctx.knob})" if ctx.knob else "mace"
        planned = cls.plan(params, upstream, reader)
        if isinstance(planned, TypeRefusal):
            return planned
        inputs, target, irreps_a, plan = planned
        writes = {F.NODE_FEATURES: FieldType(target, Level.NODE)}
        reads = dict(inputs.reads)
        if params.layer_readout:
            if not any(ir == o3.Irrep("0e") for _, ir in target):
                return TypeRefusal(
                    f"{reader} reads an energy term out of its 0e channels (layer_readout), "
                    f"but its features {target} have none",
                    "add 0e channels to features, or set layer_readout: false",
                )
            if F.LAYER_ENERGY in upstream:  # an earlier layer's terms: this one adds to them
                reads[F.LAYER_ENERGY] = upstream[F.LAYER_ENERGY]
            writes[F.LAYER_ENERGY] = scalars(1, Level.NODE)
        return Signature(
            reads=reads,
            writes=writes,
            guarantee=edge_guarantee(params),
            notes=describe_plan(plan) + (f"A-basis {irreps_a}, correlation {params.correlation}",),
            extensive=not params.a_norm,  # StructureNorm couples every atom of a structure
        )

    def __init__(self, params: MACEParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        inputs, target, irreps_a, plan = self.plan(params, upstream, "mace")
        with exact_constants():  # float64 Clebsch–Gordan constants; compile casts the model
            irreps_in = inputs.irreps_node
            num_species = len(ctx.species)
            self.linear_up = o3.Linear(irreps_in, irreps_in)
            self.conv = EdgeTensorProduct(
                plan,
                self.irreps_in[F.EDGE_RADIAL].dim,
                list(params.radial_hidden),
                params.radial_activation,
                params.tensor_product,
            )
            self.linear_a = o3.Linear(plan.irreps_out, irreps_a)
            self.contraction = SymmetricContraction(
                irreps_a, target, params.correlation, num_species
            )
            self.linear_out = o3.Linear(target, target)
            self.sc = self_connection(params.self_connection, irreps_in, target, num_species)
            self.a_norm = StructureNorm(irreps_a) if params.a_norm else None
            # Built last, so the layer's other weights draw the same initial values with
            # or without it. A Linear to 0e reads only the 0e channels.
            self.energy_term = o3.Linear(target, "0e") if params.layer_readout else None
        self.norm = 1.0 / params.avg_neighbours

    def message(self, state: State, edges: EdgeView) -> torch.Tensor:
        # Layout change at node level (N rows), before gathering onto E edges.
        senders = edges.gather_senders(self.conv.prepare(self.linear_up(state[F.NODE_FEATURES])))
        return self.conv(senders, state)

    def update(self, state: State, aggregated: torch.Tensor) -> dict[str, torch.Tensor]:
        x, species = state[F.NODE_FEATURES], state[F.SPECIES]
        a = self.linear_a(
            self.conv.finish(aggregated) * self.norm
        )  # (N, irreps_a.dim): the A-basis
        if self.a_norm is not None:  # (N, irreps_a.dim), unit size per structure and channel
            a = self.a_norm(a, state[F.BATCH], state[F.CELL].shape[0])
        b = self.contraction(a, species)  # (N, features.dim): the B-basis
        h = self.linear_out(b)
        if self.sc is not None:
            h = h + self.sc(x, species)
        if self.energy_term is None:
            return {F.NODE_FEATURES: h}
        term = self.energy_term(h)  # (N, 1)
        if F.LAYER_ENERGY in self.irreps_in:
            term = term + state[F.LAYER_ENERGY]
        return {F.NODE_FEATURES: h, F.LAYER_ENERGY: term}
