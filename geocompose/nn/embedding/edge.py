"""The edge embedding: radial basis, envelope and (optionally) angular basis, once per model.

It is the stage that evaluates the ``radial``, ``envelope`` and ``angular`` knobs of
the blueprint's ``embedding`` section together, so every interaction reads the same
bases (never recomputed per layer). Each part is itself a registered knob with its own
typing rule; this block's rule is theirs combined, and it builds them through the same
protocol, ``builder(params, upstream, ctx)``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field, SerializeAsAny
from torch import nn

from geocompose.nn.block import Block, BuildContext, State
from geocompose.registry import REGISTRY, Kind, KnobModel, register
from geocompose.types import Signature, TypeRefusal
from geocompose.types.group import Group


class EdgeEmbeddingParams(KnobModel):
    """The three parts, each the validated params of a registered knob of its kind."""

    type: Literal["edge_bases"] = "edge_bases"
    radial: SerializeAsAny[KnobModel] = Field(description="the `embedding.radial` knob")
    envelope: SerializeAsAny[KnobModel] = Field(description="the `embedding.envelope` knob")
    angular: SerializeAsAny[KnobModel] | None = Field(
        default=None, description="the `embedding.angular` knob, if any"
    )

    parts: ClassVar[dict[str, Kind]] = {
        "radial": Kind.RADIAL,
        "envelope": Kind.ENVELOPE,
        "angular": Kind.ANGULAR,
    }
    """Field → the kind of knob it holds (what a test strategy draws for it)."""

    def chosen(self) -> list[tuple[str, KnobModel, type[Block]]]:
        """(part, params, builder) of each part present, in evaluation order."""
        return [
            (part, getattr(self, part), REGISTRY.get(kind, getattr(self, part).type).builder)
            for part, kind in self.parts.items()
            if getattr(self, part) is not None
        ]


@register(Kind.EDGE_EMBEDDING)
class EdgeEmbedding(Block):
    """Writes ``edge_radial`` (num x 0e), ``edge_envelope`` (1x0e) and, with an
    ``angular`` basis, ``edge_angular`` (e.g. spherical harmonics of the unit edge
    vector): whatever its parts' signatures write, read from what they read.

    YAML: ``radial: {type: bessel, num: 8}`` beside ``envelope`` and ``angular`` in the
    ``embedding`` section: the edge embedding is those keys, not chosen by a ``type``.
    """

    Params = EdgeEmbeddingParams

    @classmethod
    def label(cls, params: EdgeEmbeddingParams) -> str:
        labels = [builder.label(part) for _, part, builder in params.chosen()]
        return " x ".join(labels[:2]) + "".join(f" + {label}" for label in labels[2:])

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext) -> Signature | TypeRefusal:
        reads, writes, guarantees = {}, {}, []
        for _, part, builder in params.chosen():
            sig = builder.signature(part, upstream, ctx)
            if isinstance(sig, TypeRefusal):
                return sig
            reads.update(sig.reads)
            writes.update(sig.writes)
            guarantees.append(sig.guarantee)
        return Signature(reads=reads, writes=writes, guarantee=Group.weakest(guarantees))

    def __init__(self, params: EdgeEmbeddingParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        for name, part, builder in params.chosen():
            setattr(self, name, builder(part, upstream, ctx))
        self.part_names = [name for name, _, _ in params.chosen()]

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name in self.part_names:
            part: nn.Module = getattr(self, name)
            out.update(part(state))
        return out
