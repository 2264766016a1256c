"""Data augmentation as a strategy: random group elements in training, nothing after."""

from __future__ import annotations

from typing import Literal

from geocompose.data.rotations import haar_rotations
from geocompose.nn.ops.scatter import scatter_mean
from geocompose.nn.symmetry.base import Strategy, StrategyContext, average_over_frames
from geocompose.nn.symmetry.draws import RandomDraws
from geocompose.registry import Kind, KnobModel, register
from geocompose.types import fields as F
from geocompose.types.group import Group


class AugmentationParams(KnobModel):
    type: Literal["augmentation"] = "augmentation"


@register(Kind.STRATEGY, exact=False)
class Augmentation(RandomDraws, Strategy):
    """Each training call sees every structure under a random rotation (and, for an
    O(3) claim, a random reflection half of the time), with outputs mapped back — the
    same as rotating the inputs and the targets. The rotations come from the strategy's
    generator (:mod:`~geocompose.nn.symmetry.draws`), never torch's global stream. In
    evaluation the network runs as it is: no guarantee, so the verifier reports the
    measured error, not a verdict on an exact claim.

    YAML: ``symmetry: {group: O(3), strategy: augmentation}``
    """

    Params = AugmentationParams
    needs = (F.POSITIONS, F.CELL, F.BATCH)

    @classmethod
    def signature(cls, params, upstream, ctx: StrategyContext):
        # The claim, approximately: exact only when the blocks already guarantee it.
        return cls.wrapping(params, upstream, ctx.claim, exact=ctx.wrapped.covers(ctx.claim))

    def forward(self, run, state, types, graph):
        if not self.training:
            return run(state)
        positions, batch = state[F.POSITIONS], state[F.BATCH]
        count = state[F.CELL].shape[0]
        # Drawn on the CPU from the strategy's generator: the same rotations on every device.
        q = haar_rotations(
            count, self.draws(), dtype=positions.dtype, proper=self.claim is Group.SO3
        ).to(positions.device)
        centroid = scatter_mean(positions, batch, count)
        return average_over_frames(run, state, types, q.unsqueeze(1), centroid)
