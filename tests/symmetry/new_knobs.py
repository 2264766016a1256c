"""Throwaway knobs of every selectable kind, each written as a user would write one new
file: a params model, ``signature(params, upstream, ctx)`` and a builder. ``CLEAN`` ones
keep their symmetry; ``PLANTED`` ones claim a guarantee they break (the verifier must
catch each). Registered only inside the fixture of tests/symmetry/test_new_knobs.py.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field, PositiveInt
from torch import nn

from geocompose.nn.block import Block
from geocompose.nn.embedding.base import Envelope, RadialBasis, length_signature
from geocompose.nn.embedding.harmonics import SphericalHarmonics, SphericalHarmonicsParams
from geocompose.nn.embedding.species import species_signature
from geocompose.nn.graph.base import GraphBuilder, GraphParams
from geocompose.nn.graph.neighbours import radius_pairs
from geocompose.nn.interaction.base import InteractionParams
from geocompose.nn.ops.message import EdgeView, aggregate
from geocompose.nn.ops.scatter import scatter_sum
from geocompose.nn.symmetry.base import Strategy, average_over_frames
from geocompose.registry import KnobModel
from geocompose.types import FieldType, Level, Signature, TypeRefusal, scalars
from geocompose.types import fields as F
from geocompose.types.group import Group
from geocompose.types.irreps import parse_irreps
from geocompose.types.signature import require_all

# ------------------------------------------------------------------ clean knobs


def radius_pairs_where(positions, cell, pbc, cutoff, keep):
    """The radius graph's pairs whose vector ``x_j - x_i + n @ cell`` passes ``keep``."""
    r, j, shifts = radius_pairs(positions, cell, pbc, cutoff)
    chosen = keep(positions[j] - positions[r] + shifts @ cell)
    return r[chosen], j[chosen], shifts[chosen]


class ShellGraphParams(GraphParams):
    type: Literal["shell_test"] = "shell_test"
    cutoff: float = Field(default=4.0, gt=0.0)
    inner: float = Field(default=0.3, ge=0.0, description="drop pairs closer than this (Å)")


class ShellGraph(GraphBuilder):
    """Pairs with ``inner < r < cutoff``: a radius graph without the closest contacts."""

    Params = ShellGraphParams

    def pairs(self, positions, cell, pbc):
        def beyond_inner(vectors):
            return np.linalg.norm(vectors, axis=1) > self.params.inner

        return radius_pairs_where(positions, cell, pbc, self.params.cutoff, beyond_inner)


class DoubledOneHotParams(KnobModel):
    type: Literal["doubled_one_hot_test"] = "doubled_one_hot_test"


class DoubledOneHot(Block):
    """Two copies of the species one-hot."""

    Params = DoubledOneHotParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        return species_signature(upstream, 2 * len(ctx.species))

    def forward(self, state):
        onehot = nn.functional.one_hot(state[F.SPECIES], self.irreps_out[F.NODE_FEATURES].dim // 2)
        return {F.NODE_FEATURES: onehot.repeat(1, 2).to(state[F.POSITIONS].dtype)}


class PowersRadialParams(KnobModel):
    type: Literal["powers_test"] = "powers_test"
    num: PositiveInt = 3


class PowersRadial(RadialBasis):
    """``(r/c)^k``, k = 1..num."""

    Params = PowersRadialParams

    def of_lengths(self, lengths):
        x = lengths / self.cutoff
        return torch.cat([x**k for k in range(1, self.params.num + 1)], dim=1)


class QuarticEnvelopeParams(KnobModel):
    type: Literal["quartic_test"] = "quartic_test"


class QuarticEnvelope(Envelope):
    """``(1 - (r/c)^2)^2`` inside the cutoff: zero with zero slope at r = c."""

    Params = QuarticEnvelopeParams

    def of_lengths(self, lengths):
        x = lengths / self.cutoff
        return torch.where(x < 1.0, (1.0 - x * x) ** 2, torch.zeros_like(x))


class DirectionsParams(KnobModel):
    type: Literal["directions_test"] = "directions_test"


class Directions(Block):
    """``1x0e + 1x1o``: a constant and the unit edge vector."""

    Params = DirectionsParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        reads = require_all(upstream, (F.EDGE_LENGTHS, F.EDGE_VECTORS), "directions_test")
        if isinstance(reads, TypeRefusal):
            return reads
        angular = FieldType(parse_irreps("1x0e + 1x1o"), Level.EDGE)
        return Signature(reads=reads, writes={F.EDGE_ANGULAR: angular}, guarantee=Group.O3)

    def forward(self, state):
        unit = state[F.EDGE_VECTORS] / state[F.EDGE_LENGTHS].clamp(min=1e-12)
        return {F.EDGE_ANGULAR: torch.cat([torch.ones_like(unit[:, :1]), unit], dim=1)}


class MeanFieldParams(InteractionParams):
    type: Literal["mean_field_test"] = "mean_field_test"


class MeanField(Block):
    """``h_i <- h_i + W mean_j u(r_ij) h_j`` on scalar features."""

    Params = MeanFieldParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        names = (F.NODE_FEATURES, F.EDGE_ENVELOPE, F.EDGE_INDEX, F.POSITIONS)
        reads = require_all(upstream, names, "mean_field_test")
        if isinstance(reads, TypeRefusal):
            return reads
        if not reads[F.NODE_FEATURES].is_scalar:
            return TypeRefusal("mean_field_test reads scalar node features only")
        return Signature(reads, {F.NODE_FEATURES: reads[F.NODE_FEATURES]}, Group.O3)

    def __init__(self, params, upstream, ctx):
        super().__init__(params, upstream, ctx)
        width = self.irreps_in[F.NODE_FEATURES].dim
        self.mix = nn.Linear(width, width)

    def forward(self, state):
        edges = EdgeView.from_state(state)
        h = state[F.NODE_FEATURES]
        messages = edges.gather_senders(h) * state[F.EDGE_ENVELOPE]
        return {F.NODE_FEATURES: h + self.mix(aggregate(messages, edges, "mean"))}


class SquaresReadoutParams(KnobModel):
    type: Literal["squares_test"] = "squares_test"


class SquaresReadout(Block):
    """``E = sum_i (w . h_i)^2`` over the scalar channels."""

    Params = SquaresReadoutParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        reads = require_all(upstream, (F.NODE_FEATURES, F.BATCH, F.CELL), "squares_test")
        if isinstance(reads, TypeRefusal):
            return reads
        if not reads[F.NODE_FEATURES].is_scalar:
            return TypeRefusal("squares_test reads scalar node features only")
        return Signature(reads, {ctx.output: scalars(1, Level.STRUCTURE)}, Group.O3)

    def __init__(self, params, upstream, ctx):
        super().__init__(params, upstream, ctx)
        self.weights = nn.Linear(self.irreps_in[F.NODE_FEATURES].dim, 1, bias=False)
        self.output = ctx.output

    def energy(self, state):
        per_atom = self.weights(state[F.NODE_FEATURES]) ** 2
        return scatter_sum(per_atom, state[F.BATCH], state[F.CELL].shape[0])

    def forward(self, state):
        return {self.output: self.energy(state)}


class InversionAverageParams(KnobModel):
    type: Literal["inversion_average_test"] = "inversion_average_test"


class InversionAverage(Strategy):
    """Average over ``{x, -x}``: lifts an SO(3) guarantee to O(3)."""

    Params = InversionAverageParams
    needs = (F.POSITIONS, F.CELL, F.BATCH)

    @classmethod
    def signature(cls, params, upstream, ctx):
        lifted = Group.O3 if ctx.wrapped.covers(Group.SO3) else ctx.wrapped
        return cls.wrapping(params, upstream, lifted)

    def forward(self, run, state, types, graph):
        positions, count = state[F.POSITIONS], state[F.CELL].shape[0]
        eye = torch.eye(3, dtype=positions.dtype, device=positions.device)
        frames = torch.stack([eye, -eye]).expand(count, 2, 3, 3)
        centroid = torch.zeros(count, 3, dtype=positions.dtype, device=positions.device)
        return average_over_frames(run, state, types, frames, centroid)


# ------------------------------------------------------------------ planted defects


class NorthGraphParams(GraphParams):
    type: Literal["north_test"] = "north_test"
    cutoff: float = Field(default=4.0, gt=0.0)


class NorthGraph(GraphBuilder):
    """Keeps only pairs whose vector points to +z: depends on the orientation."""

    Params = NorthGraphParams

    def pairs(self, positions, cell, pbc):
        def north(vectors):
            return vectors[:, 2] > 0

        return radius_pairs_where(positions, cell, pbc, self.params.cutoff, north)


class AtomIndexEmbeddingParams(KnobModel):
    type: Literal["atom_index_test"] = "atom_index_test"


class AtomIndexEmbedding(Block):
    """One-hot species plus the atom's position in the list: depends on atom order."""

    Params = AtomIndexEmbeddingParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        return species_signature(upstream, len(ctx.species))

    def forward(self, state):
        species = state[F.SPECIES]
        onehot = nn.functional.one_hot(species, self.irreps_out[F.NODE_FEATURES].dim)
        index = torch.arange(len(species), dtype=state[F.POSITIONS].dtype).unsqueeze(1)
        return {F.NODE_FEATURES: onehot.to(index.dtype) * (1.0 + 0.1 * index)}


class HeightRadialParams(PowersRadialParams):
    type: Literal["height_test"] = "height_test"


class HeightRadial(PowersRadial):
    """Powers of r scaled by the receiver's absolute height z: reads raw coordinates."""

    Params = HeightRadialParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        sig = length_signature(upstream, F.EDGE_RADIAL, params.num, "height_test")
        reads = require_all(upstream, (F.POSITIONS, F.EDGE_INDEX), "height_test")
        if isinstance(sig, TypeRefusal) or isinstance(reads, TypeRefusal):
            return sig if isinstance(sig, TypeRefusal) else reads
        return Signature({**sig.reads, **reads}, sig.writes, Group.O3)

    def forward(self, state):
        height = state[F.POSITIONS][state[F.EDGE_INDEX][1], 2:3]
        return {F.EDGE_RADIAL: self.of_lengths(state[F.EDGE_LENGTHS]) * (1 + 0.3 * height)}


class TiltedHarmonicsParams(SphericalHarmonicsParams):
    type: Literal["tilted_test"] = "tilted_test"


class TiltedHarmonics(SphericalHarmonics):
    """Spherical harmonics whose ``0e`` channel also carries the edge's z direction,
    declared as plain harmonics: a 'scalar' that turns with the structure."""

    Params = TiltedHarmonicsParams

    def forward(self, state):
        harmonics = super().forward(state)[F.EDGE_ANGULAR]
        unit_z = state[F.EDGE_VECTORS][:, 2:3] / state[F.EDGE_LENGTHS].clamp(min=1e-12)
        return {F.EDGE_ANGULAR: torch.cat([harmonics[:, :1] + 0.3 * unit_z, harmonics[:, 1:]], 1)}


class OffsetReadoutParams(KnobModel):
    type: Literal["offset_test"] = "offset_test"


class OffsetReadout(SquaresReadout):
    """The squares energy plus the summed x coordinates: not invariant."""

    Params = OffsetReadoutParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        sig = super().signature(params, upstream, ctx)
        if isinstance(sig, TypeRefusal):
            return sig
        return Signature({**sig.reads, F.POSITIONS: upstream[F.POSITIONS]}, sig.writes, Group.O3)

    def forward(self, state):
        x = state[F.POSITIONS][:, :1]
        offset = scatter_sum(x, state[F.BATCH], state[F.CELL].shape[0])
        return {self.output: self.energy(state) + offset}


class ClaimOnlyParams(KnobModel):
    type: Literal["claim_only_test"] = "claim_only_test"


class ClaimOnly(Strategy):
    """Says it gives the claimed group exactly, and then does nothing."""

    Params = ClaimOnlyParams

    @classmethod
    def signature(cls, params, upstream, ctx):
        return cls.wrapping(params, upstream, ctx.claim)
