"""Vector outputs (``1o``): direct forces per atom, a dipole per structure, and the
positions an EGNN moved.

The two learned heads stack PaiNN's *gated equivariant blocks* (Schütt, Unke,
Gastegger, ICML 2021, Sec. 4.2) on the ``0e`` and ``1o`` channels of
``node_features``::

    v' = gate o (W_2 v),   [s', gate] = Dense(act(Dense([s, |W_1 v|])))

Only invariants pass through nonlinearities and vectors are only mixed linearly or
scaled by invariants, so every output is O(3)-equivariant. Other irreps (``2e`` of a
spherical model, say) are ignored: a readout may use a subset of the channels.
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from geocompose.nn.activations import Activation, activation, mlp
from geocompose.nn.block import Block, BuildContext, State
from geocompose.nn.ops.cartesian import CartesianLayout, VectorLinear, vector_norm
from geocompose.nn.ops.scatter import scatter_mean, scatter_sum
from geocompose.registry import Kind, KnobModel, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal
from geocompose.types import fields as F
from geocompose.types.bounds import Size
from geocompose.types.group import Group
from geocompose.types.irreps import parse_irreps
from geocompose.types.signature import require_all

VECTOR_PER_ATOM = FieldType(parse_irreps("1o"), Level.NODE)
VECTOR_PER_STRUCTURE = FieldType(parse_irreps("1o"), Level.STRUCTURE)


class GatedEquivariant(nn.Module):
    """One gated equivariant block: ``(S, V)`` channels → ``(s_out, v_out)`` channels.

    Args:
        scalars_in, vectors_in: input channel counts (vectors may be 0).
        scalars_out, vectors_out: output channel counts.
        act: activation inside the gate MLP, and on ``s'`` when ``final`` is False.
        final: the last block of a head: its scalar output is not activated.
    """

    def __init__(
        self, scalars_in, vectors_in, scalars_out, vectors_out, act: Activation, final: bool
    ):
        super().__init__()
        self.scalars_out, self.vectors_out = scalars_out, vectors_out
        self.norm_mix = VectorLinear(vectors_in, vectors_in) if vectors_in else None
        self.out_mix = VectorLinear(vectors_in, vectors_out) if vectors_in and vectors_out else None
        hidden = max(scalars_in, 1)
        self.gate = mlp([scalars_in + vectors_in, hidden, scalars_out + vectors_out], act)
        self.act = None if final else activation(act)

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``s (N, S)``, ``v (N, V, 3)`` → ``(N, s_out)``, ``(N, v_out, 3)``."""
        context = (
            s if self.norm_mix is None else torch.cat([s, vector_norm(self.norm_mix(v))], dim=-1)
        )
        s_out, gate = torch.split(self.gate(context), [self.scalars_out, self.vectors_out], dim=-1)
        if self.out_mix is None:  # no vectors to gate: the vector output is zero
            v_out = s.new_zeros(s.shape[0], self.vectors_out, 3)
        else:
            v_out = gate.unsqueeze(-1) * self.out_mix(v)
        return (s_out if self.act is None else self.act(s_out)), v_out


def gated_stack(
    layout: CartesianLayout, hidden, scalars_out: int, vectors_out: int, act
) -> nn.ModuleList:
    """Gated blocks through ``hidden`` (channels each, scalars and vectors) to the output."""
    with_vectors = layout.num_vectors > 0  # no vectors in: no vector channels to carry
    sizes = [(layout.num_scalars, layout.num_vectors)] + [
        (h, h if with_vectors else 0) for h in hidden
    ]
    sizes.append((scalars_out, vectors_out))
    return nn.ModuleList(
        GatedEquivariant(*a, *b, act=act, final=i == len(sizes) - 2)
        for i, (a, b) in enumerate(itertools.pairwise(sizes))
    )


def run_stack(
    stack: nn.ModuleList, s: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    for block in stack:
        s, v = block(s, v)
    return s, v


def fresh_output(upstream, ctx: BuildContext, reader: str) -> TypeRefusal | None:
    """Refuse an output name that is already a field (``positions``, ``node_features``):
    writing it would replace that field for every later block."""
    if ctx.output in upstream:
        return TypeRefusal(
            f"{reader} would overwrite the field `{ctx.output}` ({upstream[ctx.output]})",
            f"give the output another name, e.g. '{ctx.output}_out'",
        )
    return None


def cartesian_channels(upstream, ctx: BuildContext, reader: str, *, need_vectors: bool):
    """Reads of a vector head, or a refusal when the channels it needs are missing."""
    clash = fresh_output(upstream, ctx, reader)
    if clash is not None:
        return clash
    reads = require_all(upstream, (F.NODE_FEATURES, F.BATCH, F.CELL), reader)
    if isinstance(reads, TypeRefusal):
        return reads
    irreps = reads[F.NODE_FEATURES].irreps
    layout = CartesianLayout.of(irreps, skip_others=True)
    if layout.num_scalars == 0:
        return TypeRefusal(
            f"{reader} gates on the 0e channels of {F.NODE_FEATURES}; upstream gives {irreps}"
        )
    if need_vectors and layout.num_vectors == 0:
        return TypeRefusal(
            f"{reader} reads the 1o (vector) channels of {F.NODE_FEATURES}, but upstream gives {irreps}",
            "use an equivariant interaction with vector features (painn, gvp, nequip) before it, "
            "or conservative forces {type: gradient}",
        )
    return reads


class HeadParams(KnobModel):
    hidden: list[Size] = Field(default_factory=lambda: [16])
    activation: Activation = "silu"


class DirectForcesParams(HeadParams):
    type: Literal["direct_forces"] = "direct_forces"


@register(Kind.READOUT)
class DirectForces(Block):
    """Forces predicted directly from vector features: ``F_i = gated(s_i, v_i)``.

    One ``1o`` per atom from the gated equivariant stack (as in the direct-force heads
    of PaiNN-style models and GemNet-dT). Equivariant by construction, but *not*
    conservative: nothing makes it the gradient of an energy, so the verifier measures
    and reports (never claims) its curl. Cheaper than ``{type: gradient}`` (no backward
    pass) and the usual choice for large-scale relaxation pre-training.

    Signature: reads ``node_features`` (its ``0e`` and ``1o`` channels; at least one of
    each), ``batch``, ``cell`` → writes ``<output>: 1x1o per node``.

    YAML: ``forces: {type: direct_forces, hidden: [64]}``
    """

    Params = DirectForcesParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        reads = cartesian_channels(
            upstream, ctx, f"readout '{ctx.output}' (direct_forces)", need_vectors=True
        )
        if isinstance(reads, TypeRefusal):
            return reads
        return Signature(reads=reads, writes={ctx.output: VECTOR_PER_ATOM}, guarantee=Group.O3)

    def __init__(self, params: DirectForcesParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        self.layout = CartesianLayout.of(self.irreps_in[F.NODE_FEATURES], skip_others=True)
        self.stack = gated_stack(self.layout, params.hidden, 0, 1, params.activation)
        self.output = ctx.output

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        _, v = run_stack(self.stack, *self.layout.split(state[F.NODE_FEATURES]))
        return {self.output: v[:, 0, :]}  # (N, 3)


class DipoleParams(HeadParams):
    type: Literal["dipole"] = "dipole"
    charges: bool = Field(
        default=True, description="per-atom charges times positions from the centre"
    )
    vectors: bool = Field(
        default=True, description="plus a per-atom dipole from the vector channels"
    )


@register(Kind.READOUT)
class DipoleReadout(Block):
    """Dipole moment per structure (PaiNN's dipole head, Schütt et al. 2021, eq. 13):

    ``mu_b = sum_{i in b} q_i (x_i - c_b) + mu_i``

    with latent charges ``q_i`` (``0e``) and atomic dipoles ``mu_i`` (``1o``) from the
    gated equivariant stack, and ``c_b`` the mean position of structure ``b``. Measuring
    positions from ``c_b`` makes the moment translation-invariant whatever the total
    charge. For a periodic structure ``q_i x_i`` depends on which image of each atom is
    taken (the dipole of a crystal is a Berry-phase quantity), so there the charge term
    is left out and only ``sum_i mu_i`` is returned, which is the same for every image.

    Signature: reads ``node_features`` (0e, and 1o when ``vectors``), ``positions``,
    ``batch``, ``cell``, ``pbc`` → writes ``<output>: 1x1o per structure``.

    YAML: ``dipole: {type: dipole, hidden: [64], charges: true, vectors: true}``
    """

    Params = DipoleParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        reader = f"readout '{ctx.output}' (dipole)"
        if not (params.charges or params.vectors):
            return TypeRefusal(
                f"{reader} has charges: false and vectors: false, so it outputs nothing",
                "turn on at least one of them",
            )
        reads = cartesian_channels(upstream, ctx, reader, need_vectors=params.vectors)
        if isinstance(reads, TypeRefusal):
            return reads
        more = require_all(upstream, (F.POSITIONS, F.PBC), reader)
        if isinstance(more, TypeRefusal):
            return more
        return Signature(
            reads={**reads, **more}, writes={ctx.output: VECTOR_PER_STRUCTURE}, guarantee=Group.O3
        )

    def __init__(self, params: DipoleParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        layout = CartesianLayout.of(self.irreps_in[F.NODE_FEATURES], skip_others=True)
        if not params.vectors:  # a pure charge model never reads the vector channels
            layout = CartesianLayout(layout.irreps, layout.scalar_slices, ())
        self.layout = layout
        self.stack = gated_stack(
            layout, params.hidden, int(params.charges), int(params.vectors), params.activation
        )
        self.output = ctx.output

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        batch, num_structures = state[F.BATCH], state[F.CELL].shape[0]
        q, mu = run_stack(
            self.stack, *self.layout.split(state[F.NODE_FEATURES])
        )  # (N, 0|1), (N, 0|1, 3)
        per_atom = mu.sum(dim=1)  # (N, 3); zeros without vector channels
        if self.params.charges:
            positions = state[F.POSITIONS]
            centre = scatter_mean(positions, batch, num_structures)  # (B, 3)
            molecule = ~state[F.PBC].any(dim=1)  # (B,) the charge term needs a finite system
            keep = molecule[batch].unsqueeze(-1).to(positions.dtype)  # (N, 1)
            per_atom = per_atom + keep * q * (positions - centre[batch])
        return {self.output: scatter_sum(per_atom, batch, num_structures)}


class PositionsReadoutParams(KnobModel):
    type: Literal["positions"] = "positions"


@register(Kind.READOUT)
class PositionsReadout(Block):
    """Exposes the coordinates an EGNN moved (``updated_positions``) as an output.

    They transform as positions do: ``x -> R x + t`` (type ``1o``, translates), and a
    periodic image shift moves them with the atom, which the verifier checks.

    Signature: reads ``updated_positions: 1x1o per node, translates`` → writes
    ``<output>`` with the same type.

    YAML: ``moved_positions: {type: positions}`` after ``{type: egnn, update_positions: true}``
    """

    Params = PositionsReadoutParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        reader = f"readout '{ctx.output}' (positions)"
        clash = fresh_output(upstream, ctx, reader)
        if clash is not None:
            return clash
        if F.UPDATED_POSITIONS not in upstream:
            return TypeRefusal(
                f"{reader} exposes `{F.UPDATED_POSITIONS}`, which no earlier block writes",
                "add an interaction that moves atoms, e.g. {type: egnn, update_positions: true}",
            )
        found = upstream[F.UPDATED_POSITIONS]
        return Signature(
            reads={F.UPDATED_POSITIONS: found}, writes={ctx.output: found}, guarantee=Group.O3
        )

    def __init__(self, params: PositionsReadoutParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        self.output = ctx.output

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        return {self.output: state[F.UPDATED_POSITIONS]}
