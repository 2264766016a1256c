"""Weighted frames: a continuously weighted set of frames, so outputs stay continuous.

Dym, Lawrence and Siegel (ICML 2024) prove that no canonicalisation (one frame per
input) of point clouds under rotations can be continuous, and that frame *averaging*
with frames whose weights vary continuously can be. PCA frames cannot carry such
weights: where two covariance eigenvalues meet, the eigenvectors themselves jump,
whatever weight their sign choices get. The frames here are built from pairs of atoms
instead: the frame of a pair is continuous wherever its weight is not zero, and the
weight goes to zero exactly where the frame becomes ill-defined.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from geocompose.nn.symmetry.base import FramedStrategy, average_over_frames
from geocompose.nn.symmetry.frames import (
    compact_frames,
    frames,
    neighbour_sums,
    structure_axes,
)
from geocompose.registry import Kind, KnobModel, register
from geocompose.types import fields as F
from geocompose.types.group import Group

# A structure whose largest pair weight is below this fraction of sum_i |m_i|^4 has no
# pair of non-parallel m_i: no pair frame, so it falls back to PCA frame averaging.
NO_PAIR = 1e-10


class WeightedFramesParams(KnobModel):
    type: Literal["weighted_frames"] = "weighted_frames"
    keep: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description=(
            "pairs whose weight is below this fraction of the structure's largest get "
            "weight zero (fewer network calls); the cut is continuous"
        ),
    )


def unit(v: torch.Tensor) -> torch.Tensor:
    """``v / |v|``; a vector shorter than ``eps`` of its dtype (where a frame built from
    it has weight 0) gives ``e_x`` instead, so the first and second derivatives the
    force loss needs stay finite in float32 too."""
    square = v.pow(2).sum(-1, keepdim=True)
    usable = square > torch.finfo(v.dtype).eps ** 2
    fallback = torch.zeros_like(v)
    fallback[..., 0] = 1.0
    safe = torch.where(usable, v, fallback)
    return safe / torch.where(usable, square, torch.ones_like(square)).sqrt()


def pair_frames(u_a: torch.Tensor, u_b: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) proper frames: e1 along u_a, e2 from u_b by Gram–Schmidt, e1 x e2."""
    e1 = unit(u_a)
    e2 = unit(u_b - (u_b * e1).sum(-1, keepdim=True) * e1)
    return torch.stack([e1, e2, torch.linalg.cross(e1, e2)], dim=-1)  # columns


@register(Kind.STRATEGY, exact=True, frames=True, smooth=True)
class WeightedFrames(FramedStrategy):
    """Frame averaging over pair frames with continuous invariant weights (after Dym,
    Lawrence and Siegel, ICML 2024). Each atom carries ``u_i = m_i = sum_j r_ij``
    (equivariant, invariant to translation and wrapping). The ordered pair (a, b) of
    atoms of one structure gives the frame ``Q_ab = [e1, e2, e1 x e2]`` with e1 along
    u_a and e2 the part of u_b orthogonal to it (for O(3) also its mirror
    ``Q_ab diag(1, 1, -1)``), weighted by::

        w_ab = |u_a x u_b|^2,      omega_ab = relu(w_ab / max_cd w_cd - keep)^2

    ``w_ab`` is invariant and vanishes (quadratically) exactly where ``Q_ab`` is
    ill-defined (u_a or u_b zero, or parallel), so ill-defined frames fade out instead
    of jumping, and the cut at ``keep`` of the largest weight is continuous too. The
    output ``sum_ab omega_ab D(Q_ab) f(Q_ab^T x) / sum_ab omega_ab`` is exactly O(3)-
    (SO(3)-) equivariant, permutation-equivariant, and continuous, with continuous
    forces, through geometries where PCA frames are degenerate (squares, regular
    tetrahedra and polygons): the verifier claims and checks that on paths through
    such geometries.

    Outside the claim: a structure with no non-parallel pair of m_i (a dimer, a linear
    molecule, and every crystal whose atoms sit on sites of cubic or inversion symmetry,
    where each m_i is 0) falls back to PCA frame averaging, which is neither exact nor
    continuous at degenerate covariance. Costs one network call per kept pair (twice
    that for O(3)) of the structure that keeps most: small systems only.

    YAML: ``symmetry: {group: O(3), strategy: {type: weighted_frames, keep: 0.5}}``
    """

    Params = WeightedFramesParams

    def forward(self, run, state, types, graph):
        geometry = graph(state)
        batch, num_structures = state[F.BATCH], state[F.CELL].shape[0]
        _, axes, centroid = structure_axes(state, geometry)
        u = neighbour_sums(state, geometry)  # (N, 3)
        num_atoms = u.shape[0]
        # Atom-major padding: (B, W, 3) with W the largest structure, absent atoms zero.
        counts = torch.bincount(batch, minlength=num_structures)
        width = int(counts.max()) if num_atoms else 1
        slot = torch.arange(num_atoms, device=u.device) - (torch.cumsum(counts, 0) - counts)[batch]
        padded = u.new_zeros(num_structures, width, 3)
        padded[batch, slot] = u
        u_a = padded.unsqueeze(2).expand(-1, -1, width, -1)  # (B, W, W, 3): pair (a, b)
        u_b = padded.unsqueeze(1).expand(-1, width, -1, -1)
        weight = torch.linalg.cross(u_a, u_b).pow(2).sum(-1)  # (B, W, W), zero on a == b
        largest = weight.flatten(1).amax(dim=1) if width else weight.new_zeros(num_structures)
        size = padded.pow(2).sum(-1).pow(2).sum(-1)  # (B,) sum_i |u_i|^4
        has_pair = largest > NO_PAIR * size
        # Divide only where there is a pair (a 0/0 elsewhere would poison the gradients).
        ratio = weight / torch.where(has_pair, largest, torch.ones_like(largest)).view(-1, 1, 1)
        omega = torch.relu(ratio - self.params.keep).pow(2).flatten(1)  # (B, W*W)
        omega = torch.where(has_pair.unsqueeze(1), omega, torch.zeros_like(omega))
        chosen = pair_frames(u_a, u_b).flatten(1, 2)  # (B, W*W, 3, 3)
        weights = omega
        if self.claim is not Group.SO3:
            mirror = torch.tensor([1.0, 1.0, -1.0], dtype=u.dtype, device=u.device)
            chosen = torch.cat([chosen, chosen * mirror], dim=1)
            weights = torch.cat([weights, weights], dim=1)
        # Fallback: PCA frame averaging, weight 1 for the structures without a pair.
        fallback = frames(axes, proper_only=self.claim is Group.SO3)
        lonely = (~has_pair).to(u.dtype).unsqueeze(1).expand(-1, fallback.shape[1])
        chosen, weights = compact_frames(
            torch.cat([chosen, fallback], dim=1), torch.cat([weights, lonely], dim=1)
        )
        return average_over_frames(run, state, types, chosen, centroid, weights)
