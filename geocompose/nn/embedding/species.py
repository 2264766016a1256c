"""Node embeddings: species index → invariant node features."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from geocompose.nn.block import Block, BuildContext, State
from geocompose.registry import Kind, KnobModel, register
from geocompose.types import Level, Signature, TypeRefusal, require, scalars
from geocompose.types import fields as F
from geocompose.types.bounds import Size
from geocompose.types.group import Group


def species_signature(upstream, features: int) -> Signature | TypeRefusal:
    """Species in, ``features x 0e`` node features out."""
    found = require(upstream, F.SPECIES, "the species embedding")
    if isinstance(found, TypeRefusal):
        return found
    return Signature(
        reads={F.SPECIES: found},
        writes={F.NODE_FEATURES: scalars(features, Level.NODE)},
        guarantee=Group.O3,
    )


class LearnedEmbeddingParams(KnobModel):
    type: Literal["learned"] = "learned"
    features: Size = 128


@register(Kind.NODE_EMBEDDING)
class LearnedEmbedding(Block):
    """A learned vector per species (SchNet's ``h_i^0 = a_{Z_i}``).

    Signature: reads ``species`` (discrete) → writes ``node_features: features x 0e``.

    YAML: ``node: {type: learned, features: 128}``
    """

    Params = LearnedEmbeddingParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        return species_signature(upstream, params.features)

    def __init__(self, params: LearnedEmbeddingParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        self.table = nn.Embedding(len(ctx.species), params.features)

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        return {F.NODE_FEATURES: self.table(state[F.SPECIES]).to(state[F.POSITIONS].dtype)}


class OneHotEmbeddingParams(KnobModel):
    type: Literal["one_hot"] = "one_hot"


@register(Kind.NODE_EMBEDDING)
class OneHotEmbedding(Block):
    """One-hot species encoding, ``num_species x 0e``; no weights.

    YAML: ``node: {type: one_hot}``
    """

    Params = OneHotEmbeddingParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        return species_signature(upstream, len(ctx.species))

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        species = state[F.SPECIES]
        num = self.irreps_out[F.NODE_FEATURES].dim
        onehot = torch.nn.functional.one_hot(species, num_classes=num)
        return {F.NODE_FEATURES: onehot.to(state[F.POSITIONS].dtype)}
