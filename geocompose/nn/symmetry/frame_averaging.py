"""Frame averaging, its stochastic version, and canonicalisation (PCA frames)."""

from __future__ import annotations

from typing import Literal

import torch

from geocompose.nn.ops.scatter import scatter_sum
from geocompose.nn.symmetry.base import (
    FramedStrategy,
    StrategyContext,
    average_over_frames,
    framed_group,
)
from geocompose.nn.symmetry.draws import RandomDraws
from geocompose.nn.symmetry.frames import (
    compact_frames,
    frames,
    neighbour_sums,
    sign_pattern_weights,
    structure_axes,
)
from geocompose.registry import Kind, KnobModel, register
from geocompose.types import fields as F
from geocompose.types.bounds import Size
from geocompose.types.group import Group


class FrameStrategy(FramedStrategy):
    """Shared body: PCA frames from edge vectors, then a subclass picks which to average."""

    def select(self, all_frames: torch.Tensor, axes: torch.Tensor, state) -> torch.Tensor:
        """(B, K, 3, 3) all sign choices → (B, K', 3, 3) the frames to average."""
        return all_frames

    def forward(self, run, state, types, graph):
        geometry = graph(state)
        _, axes, centroid = structure_axes(state, geometry)
        all_frames = frames(axes, proper_only=self.claim is Group.SO3)
        chosen = self.select(all_frames, axes, {**state, **geometry})
        return average_over_frames(run, state, types, chosen, centroid)


class FrameAveragingParams(KnobModel):
    type: Literal["frame_averaging"] = "frame_averaging"


@register(Kind.STRATEGY, exact=True, frames=True)
class FrameAveraging(FrameStrategy):
    """Average over all PCA frames: 8 for O(3), 4 for SO(3) (Puny et al., ICLR 2022).

    Exact for structures whose covariance has distinct eigenvalues; at repeated
    eigenvalues (methane, cubes, planar rings) the frame is ill-defined and the verifier
    reports those structures separately.

    YAML: ``symmetry: {group: O(3), strategy: frame_averaging}``
    """

    Params = FrameAveragingParams


class StochasticFrameAveragingParams(KnobModel):
    type: Literal["stochastic_frame_averaging"] = "stochastic_frame_averaging"
    eval_frames: Size | Literal["all"] = 1


@register(Kind.STRATEGY, exact=False, frames=True)
class StochasticFrameAveraging(RandomDraws, FrameStrategy):
    """One random frame per structure per call in training (FAENet's SFA, Duval et al.,
    ICML 2023), drawn from the strategy's generator (:mod:`~geocompose.nn.symmetry.draws`).
    In evaluation the first ``eval_frames`` frames (deterministic), or all of
    them: exact only with ``eval_frames: all``; otherwise approximate, and the verifier
    reports measured error figures instead of passing or failing an exact claim.

    YAML: ``strategy: {type: stochastic_frame_averaging, eval_frames: 1}``
    """

    Params = StochasticFrameAveragingParams

    @classmethod
    def signature(cls, params, upstream, ctx: StrategyContext):
        exact = params.eval_frames == "all"
        return cls.wrapping(params, upstream, framed_group(ctx), exact=exact)

    def select(self, all_frames, axes, state):
        count = all_frames.shape[1]
        if self.training:
            pick = torch.randint(count, (all_frames.shape[0],), generator=self.draws())
            pick = pick.to(all_frames.device)
            return all_frames[torch.arange(all_frames.shape[0]), pick].unsqueeze(1)
        if self.params.eval_frames == "all":
            return all_frames
        return all_frames[:, : min(self.params.eval_frames, count)]


class CanonicalisationParams(KnobModel):
    type: Literal["canonicalisation"] = "canonicalisation"


# An axis whose third moment is below this fraction of the total is sign-ambiguous.
AMBIGUOUS_MOMENT = 1e-8


@register(Kind.STRATEGY, exact=True, frames=True)
class Canonicalisation(FrameStrategy):
    """A single canonical frame: PCA axes with signs fixed by the third moment of each
    atom's neighbour-vector sum, ``s_k = sign(sum_i (m_i . v_k)^3)``, ``m_i = sum_j r_ij``
    (translation, wrapping and cell choice leave the m_i unchanged). One network call
    per structure instead of 8. Where a moment vanishes (centrosymmetric structures, e.g.
    any one-atom crystal, where every m_i is 0) that axis's sign is ambiguous, and both
    signs are averaged, as frame averaging would: exact on every structure whose
    covariance eigenvalues are distinct.

    YAML: ``strategy: canonicalisation``
    """

    Params = CanonicalisationParams

    def forward(self, run, state, types, graph):
        geometry = graph(state)
        batch, num_structures = state[F.BATCH], state[F.CELL].shape[0]
        _, axes, centroid = structure_axes(state, geometry)
        sums = neighbour_sums(state, geometry)  # m_i
        projected = torch.einsum("ni,nij->nj", sums, axes[batch])  # (N, 3): m_i . v_k
        moment = scatter_sum(projected**3, batch, num_structures)  # (B, 3)
        size = scatter_sum(projected.abs() ** 3, batch, num_structures).sum(dim=1, keepdim=True)
        ambiguous = moment.abs() <= AMBIGUOUS_MOMENT * size.clamp(min=1e-300)  # (B, 3)
        sign = torch.where(moment >= 0, 1.0, -1.0).to(axes.dtype)
        proper = self.claim is Group.SO3
        weights = sign_pattern_weights(sign, ambiguous, proper)  # (B, K)
        chosen, weights = compact_frames(frames(axes, proper_only=proper), weights)
        return average_over_frames(run, state, types, chosen, centroid, weights)
