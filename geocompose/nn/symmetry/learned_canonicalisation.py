"""Learned canonicalisation: a small equivariant network predicts each structure's frame.

Kaba et al. (ICML 2023) make any network symmetric by running it in a frame that a
shallow equivariant network predicts from the input; the frame is equivariant by
construction, so the whole model is exactly invariant (equivariant), and the
canonicaliser learns with the rest. Mondal et al. (NeurIPS 2023, equiadapt) add a
prior: on the training data, the predicted frame is pulled toward the identity, so a
pretrained backbone sees its data the way it was trained on (``prior_weight``).
"""

from __future__ import annotations

from typing import Literal

import torch
from e3nn import o3
from pydantic import Field
from torch import nn

from geocompose.data.cache import RunCaches
from geocompose.nn.embedding.edge import EdgeEmbeddingParams
from geocompose.nn.embedding.envelope import PolynomialEnvelopeParams
from geocompose.nn.embedding.radial import BesselRadialParams
from geocompose.nn.embedding.species import LearnedEmbeddingParams
from geocompose.nn.ops.scatter import scatter_sum
from geocompose.nn.symmetry.base import (
    FramedStrategy,
    Penalised,
    StrategyContext,
    average_over_frames,
)
from geocompose.nn.symmetry.frames import compact_frames, frames, structure_axes
from geocompose.nn.symmetry.weighted_frames import unit
from geocompose.registry import REGISTRY, Kind, KnobModel, register
from geocompose.types import TypeRefusal
from geocompose.types import fields as F
from geocompose.types.bounds import Size
from geocompose.types.group import Group

VECTOR = o3.Irrep("1o")

# Pooled vectors this close to zero or to parallel (relative, squared) give no frame.
DEGENERATE = 1e-10


class LearnedCanonicalisationParams(KnobModel):
    type: Literal["learned_canonicalisation"] = "learned_canonicalisation"
    block: str = Field(
        default="painn",
        description="the registered equivariant interaction the canonicaliser stacks",
        examples=["painn"],
    )
    layers: int = Field(default=1, ge=1, le=4, description="how many copies of `block`")
    features: Size = Field(default=8, description="the canonicaliser's channels")
    prior_weight: float = Field(
        default=0.0,
        ge=0.0,
        allow_inf_nan=False,
        description=(
            "weight of the training loss term mean_b |Q_b - I|^2 (prior-aligned "
            "canonicalisation); 0 leaves it out"
        ),
    )


def predictor_stages(params: LearnedCanonicalisationParams, ctx: StrategyContext):
    """(kind, params) of the canonicaliser's blocks, every one a registered knob, or a
    refusal naming the registered interactions (with a "did you mean")."""
    edge = EdgeEmbeddingParams(
        radial=BesselRadialParams(num=8), envelope=PolynomialEnvelopeParams(p=6)
    )
    stages = [
        (Kind.NODE_EMBEDDING, LearnedEmbeddingParams(features=params.features)),
        (Kind.EDGE_EMBEDDING, edge),
    ]
    try:
        block = REGISTRY.get(Kind.INTERACTION, params.block).params()
    except KeyError as err:
        return stages, TypeRefusal(f"{ctx.knob}.block: {err.args[0]}")
    return stages + [(Kind.INTERACTION, block)] * params.layers, None


def predictor_types(params, upstream, ctx: StrategyContext):
    """The canonicaliser's field types after its last block, or why it cannot be one."""
    stages, refusal = predictor_stages(params, ctx)
    if refusal is not None:
        return refusal
    types = dict(upstream)
    for kind, part in stages:
        sig = REGISTRY.get(kind, part.type).builder.signature(part, types, ctx)
        if isinstance(sig, TypeRefusal):
            return TypeRefusal(f"{ctx.knob}.block '{params.block}': {sig.render()}")
        needed = ctx.claim if ctx.claim is not Group.NONE else Group.O3
        if not sig.guarantee.covers(needed):
            return TypeRefusal(
                f"{ctx.knob}.block '{params.block}' guarantees {sig.guarantee.value}, "
                f"not {needed.value}: a canonicaliser must be equivariant itself"
            )
        types.update(sig.writes)
    irreps = types[F.NODE_FEATURES].irreps
    if not any(ir == VECTOR for _, ir in irreps):
        return TypeRefusal(
            f"{ctx.knob}.block '{params.block}' writes node features {irreps} with no 1o "
            "vectors: a canonicaliser needs vectors to build a frame from"
        )
    return types


@register(Kind.STRATEGY, exact=True, frames=True)
class LearnedCanonicalisation(Penalised, FramedStrategy):
    """Run the wrapped network in a frame predicted per structure by a small equivariant
    network (Kaba et al., ICML 2023): a learned species embedding, Bessel radial basis,
    then ``layers`` copies of the registered interaction ``block`` (PaiNN by default;
    any block whose node features carry ``1o`` vectors and whose guarantee covers the
    claim). A linear map of its vector channels gives three vectors per atom, summed
    per structure: ``u_1, u_2, u_3``. The frame is Gram–Schmidt of (u_1, u_2) and
    ``n = e1 x e2``; for SO(3) ``Q = [e1, e2, n]``, for O(3) ``Q = [e1, e2, s n]`` with
    ``s = sign(u_3 . n)``, which flips with the handedness of the input. Q -> R Q for
    every R of the claim, so the model is exactly equivariant by construction, and the
    canonicaliser is trained with the backbone through the frame.

    Where ``u_3 . n`` vanishes both handedness are averaged (still exact). Where u_1
    and u_2 vanish or are parallel the structure has no learned frame: structures with
    a point symmetry that fixes no vector (tetrahedra, cubes, planar rings, cubic
    crystals) always do, since an equivariant network cannot output a vector such a
    structure does not have; they fall back to PCA frame averaging (measured there).

    ``prior_weight > 0``: the trainer adds ``prior_weight * mean_b |Q_b - I|^2`` of the
    training batches to the loss (prior-aligned canonicalisation, Mondal et al. 2023).

    YAML: ``strategy: {type: learned_canonicalisation, block: painn, layers: 1}``
    """

    Params = LearnedCanonicalisationParams
    penalty_name = "canonical_prior"

    @classmethod
    def signature(cls, params, upstream, ctx: StrategyContext):
        types = predictor_types(params, upstream, ctx)
        if isinstance(types, TypeRefusal):
            return types
        return super().signature(params, upstream, ctx)

    def __init__(self, params, upstream, ctx: StrategyContext):
        super().__init__(params, upstream, ctx)
        stages, _ = predictor_stages(params, ctx)
        types = dict(upstream)
        blocks = []
        for kind, part in stages:
            builder = REGISTRY.get(kind, part.type).builder
            blocks.append(builder(part, types, ctx))
            types.update(builder.signature(part, types, ctx).writes)
        self.predictor = nn.ModuleList(blocks)
        irreps = types[F.NODE_FEATURES].irreps
        self.vector_slices = [sl for (_, ir), sl in zip(irreps, irreps.slices()) if ir == VECTOR]
        channels = sum(mul for mul, ir in irreps if ir == VECTOR)
        # A bias-free mix of vector channels keeps the vectors equivariant.
        self.vector_head = nn.Linear(channels, 3, bias=False)
        self.penalty_weight = params.prior_weight

    def pooled_vectors(self, state, geometry) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3 vectors, 3) the canonicaliser's three vectors per structure, and (B, 3)
        the sum of their per-atom terms' squared lengths (the scale they cancel from)."""
        inner = {**state, **geometry}
        caches = inner.get(F.CACHES)
        inner[F.CACHES] = caches.for_run() if caches is not None else RunCaches.for_call()
        for block in self.predictor:
            inner.update(block(inner))
        features = inner[F.NODE_FEATURES]
        vectors = torch.cat(
            [
                features[:, sl].reshape(features.shape[0], (sl.stop - sl.start) // 3, 3)
                for sl in self.vector_slices
            ],
            1,
        )  # (N, channels, 3)
        per_atom = self.vector_head(vectors.transpose(1, 2)).transpose(1, 2)  # (N, 3, 3)
        batch, num_structures = state[F.BATCH], state[F.CELL].shape[0]
        scale = scatter_sum(per_atom.pow(2).sum(-1), batch, num_structures)
        return scatter_sum(per_atom, batch, num_structures), scale

    def forward(self, run, state, types, graph):
        geometry = graph(state)
        u, scale = self.pooled_vectors(state, geometry)  # (B, 3, 3), (B, 3)
        e1 = unit(u[:, 0])
        rest = u[:, 1] - (u[:, 1] * e1).sum(-1, keepdim=True) * e1
        e2 = unit(rest)
        normal = torch.linalg.cross(e1, e2)
        size = u.pow(2).sum(-1)  # (B, 3)
        # A symmetric structure's pooled vectors cancel to rounding: compare with the
        # per-atom terms they are summed from, not with each other.
        has_frame = (size[:, 0] > DEGENERATE * scale[:, 0]) & (
            rest.pow(2).sum(-1) > DEGENERATE * scale[:, 1]
        )
        learned = torch.stack([e1, e2, normal], dim=-1).unsqueeze(1)  # (B, 1, 3, 3)
        ones = torch.ones_like(size[:, :1])
        if self.claim is Group.SO3:
            weights = ones
        else:
            side = (u[:, 2] * normal).sum(-1, keepdim=True)  # (B, 1)
            sign = torch.where(side >= 0, 1.0, -1.0).to(u.dtype)
            tied = side.pow(2) <= DEGENERATE * scale[:, 2:]
            mirror = torch.tensor([1.0, 1.0, -1.0], dtype=u.dtype, device=u.device)
            signed = learned * torch.stack([ones, ones, sign], -1).unsqueeze(1)
            learned = torch.cat([signed, signed * mirror], dim=1)  # (B, 2, 3, 3)
            weights = torch.cat([ones, tied.to(u.dtype)], dim=1)
        weights = weights * has_frame.to(u.dtype).unsqueeze(1)
        if self.training and self.params.prior_weight > 0:
            identity = torch.eye(3, dtype=u.dtype, device=u.device)
            distance = (learned[:, 0] - identity).pow(2).sum((-1, -2))  # (B,)
            framed = has_frame.to(u.dtype)
            self.penalty = (distance * framed).sum() / framed.sum().clamp(min=1.0)
        _, axes, centroid = structure_axes(state, geometry)
        # Structures without a learned frame: PCA frame averaging, weight 1.
        fallback = frames(axes, proper_only=self.claim is Group.SO3)
        lonely = (~has_frame).to(u.dtype).unsqueeze(1).expand(-1, fallback.shape[1])
        chosen, weights = compact_frames(
            torch.cat([learned, fallback], dim=1), torch.cat([weights, lonely], dim=1)
        )
        return average_over_frames(run, state, types, chosen, centroid, weights)
