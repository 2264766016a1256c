"""Local frames: one frame per atom from its own neighbourhood, predictions averaged."""

from __future__ import annotations

from typing import Literal

import torch

from geocompose.nn.ops.scatter import scatter_mean, scatter_sum
from geocompose.nn.symmetry.base import FramedStrategy, average_over_frames
from geocompose.nn.symmetry.frames import principal_axes
from geocompose.registry import Kind, KnobModel, register
from geocompose.types import fields as F
from geocompose.types.group import Group


class LocalFramesParams(KnobModel):
    type: Literal["local_frames"] = "local_frames"


@register(Kind.STRATEGY, exact=True, frames=True)
class LocalFrames(FramedStrategy):
    """Average the unconstrained network's predictions over frames built around each
    atom (after Pozdnyakov and Ceriotti, 2024): atom a's frame is the eigenbasis of its
    own neighbour covariance ``sum_j r_aj r_aj^T``, with axis signs fixed by the third
    moments ``sum_j (r_aj . v)^3`` (and the last axis by handedness for SO(3)). The
    prediction is ``sum_a w_a D(Q_a) f(Q_a^T x) / sum_a w_a`` with invariant weights
    ``w_a = g_12 g_23 |m_1 m_2 m_3|`` (eigenvalue gaps and third moments, relative), which
    vanish where atom a's frame is ill-defined, so ill-defined frames fade out instead of
    switching. Exact where some atom has a well-defined frame; where none has (dimers,
    linear or highly symmetric molecules) it falls back to equal weights and is not
    exact. Costs one network call per atom of the largest structure: small systems only.

    YAML: ``symmetry: {group: O(3), strategy: local_frames}``
    """

    Params = LocalFramesParams

    def forward(self, run, state, types, graph):
        geometry = graph(state)
        vectors = geometry[F.EDGE_VECTORS]  # (E, 3)
        receivers = state[F.EDGE_INDEX][1]
        positions, batch = state[F.POSITIONS], state[F.BATCH]
        num_atoms, num_structures = positions.shape[0], state[F.CELL].shape[0]
        cov = scatter_sum(
            vectors.unsqueeze(-1) * vectors.unsqueeze(-2), receivers, num_atoms
        )  # (N, 3, 3)
        values, axes = principal_axes(cov)  # (N, 3), (N, 3, 3)
        projected = torch.einsum("ei,eij->ej", vectors, axes[receivers])  # (E, 3)
        moments = scatter_sum(projected**3, receivers, num_atoms)  # (N, 3)
        signs = torch.where(moments >= 0, 1.0, -1.0).to(axes.dtype)
        frames = axes * signs.unsqueeze(1)
        if self.claim is Group.SO3:
            flip = torch.det(frames).sign()
            frames = frames * torch.stack(
                [torch.ones_like(flip), torch.ones_like(flip), flip], -1
            ).unsqueeze(1)
        scale = values.abs().amax(dim=1).clamp(min=1e-12)
        gaps = (values[:, 1] - values[:, 0]) * (values[:, 2] - values[:, 1]) / scale**2
        lengths = scatter_sum(vectors.pow(2).sum(-1, keepdim=True), receivers, num_atoms).clamp(
            min=1e-12
        )
        weight = gaps * (moments / lengths**1.5).abs().prod(dim=1)  # (N,)
        # Atom-major layout: (B, K, 3, 3) with K the largest structure, padded by weight 0.
        counts = torch.bincount(batch, minlength=num_structures)
        start = torch.cumsum(counts, 0) - counts
        slot = torch.arange(num_atoms, device=positions.device) - start[batch]
        width = int(counts.max()) if num_atoms else 1
        padded = torch.eye(3, dtype=axes.dtype, device=axes.device).repeat(
            num_structures, width, 1, 1
        )
        padded[batch, slot] = frames
        weights = torch.zeros(num_structures, width, dtype=axes.dtype, device=axes.device)
        weights[batch, slot] = weight
        # A structure where no atom has a well-defined frame (a dimer, a linear molecule)
        # falls back to equal weights over its atoms: finite, but not exact (reported).
        present = torch.zeros_like(weights)
        present[batch, slot] = 1.0
        ill_defined = weights.sum(dim=1, keepdim=True) < 1e-9
        weights = torch.where(ill_defined, present, weights)
        return average_over_frames(
            run, state, types, padded, scatter_mean(positions, batch, num_structures), weights
        )
