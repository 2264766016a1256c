"""PCA frames of a structure, equivariant by construction, with a safe eigen-solver.

The covariance is built from *edge vectors*, ``C_b = sum_{e in b} r_e r_e^T``, not from
positions: it is then invariant to translations, to wrapping atoms across periodic
boundaries and to the choice of cell, and it rotates as ``R C R^T`` (for a complete
graph of a molecule it is 2N times the usual centred-position covariance). A structure
with no edges falls back to its centred positions.

The eigenvectors ``V`` fix a frame up to the sign of each axis; frame averaging uses
all ``2^3 = 8`` sign choices for O(3) and the 4 with ``det = +1`` for SO(3) (Puny et al.,
ICLR 2022; Duval et al., FAENet, ICML 2023).
"""

from __future__ import annotations

import itertools

import torch

from geocompose.nn.ops.scatter import scatter_mean, scatter_sum
from geocompose.types import fields as F


class SafeEigh(torch.autograd.Function):
    """``torch.linalg.eigh`` whose backward stays finite at repeated eigenvalues.

    The exact backward divides by ``lambda_j - lambda_i``; at (near-)degenerate
    eigenvalues that is inf/NaN. Here ``1/d`` becomes ``d / (d^2 + eps^2)``: exact away
    from degeneracy, finite (and documented as unreliable) at it.
    """

    EPS = 1e-12

    @staticmethod
    def forward(ctx, matrix: torch.Tensor):
        values, vectors = torch.linalg.eigh(matrix)
        ctx.save_for_backward(values, vectors)
        return values, vectors

    @staticmethod
    def backward(ctx, grad_values, grad_vectors):
        values, vectors = ctx.saved_tensors
        vt = vectors.transpose(-1, -2)
        inner = torch.zeros_like(vectors)
        if grad_vectors is not None:
            gap = values.unsqueeze(-2) - values.unsqueeze(-1)  # (.., i, j) = lambda_j - lambda_i
            scale = values.abs().amax(dim=-1, keepdim=True).unsqueeze(-1).clamp(min=1.0)
            eps = SafeEigh.EPS * scale
            f = gap / (gap**2 + eps**2)
            f = f * (1 - torch.eye(values.shape[-1], dtype=values.dtype, device=values.device))
            inner = f * (vt @ grad_vectors)
        if grad_values is not None:
            inner = inner + torch.diag_embed(grad_values)
        grad = vectors @ inner @ vt
        return 0.5 * (grad + grad.transpose(-1, -2))


def covariance(edge_vectors, edge_receivers, positions, batch, num_structures):
    """(B, 3, 3) covariance per structure and (B, 3) centroids."""
    centroid = scatter_mean(positions, batch, num_structures)  # (B, 3)
    structure_of_edge = batch[edge_receivers]
    outer = edge_vectors.unsqueeze(-1) * edge_vectors.unsqueeze(-2)  # (E, 3, 3)
    cov = scatter_sum(outer, structure_of_edge, num_structures)
    # Structures without edges: centred positions instead.
    centred = positions - centroid[batch]
    fallback = scatter_sum(centred.unsqueeze(-1) * centred.unsqueeze(-2), batch, num_structures)
    edges_per_structure = torch.bincount(structure_of_edge, minlength=num_structures)
    cov = torch.where((edges_per_structure > 0).view(-1, 1, 1), cov, fallback)
    return cov, centroid


def principal_axes(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (B, 3) ascending and eigenvectors (B, 3, 3) as columns."""
    return SafeEigh.apply(cov)


def structure_axes(state, geometry) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eigenvalues (B, 3), PCA axes (B, 3, 3) and centroids (B, 3) of each structure's
    edge-vector covariance, from the model state and the graph's geometry."""
    cov, centroid = covariance(
        geometry[F.EDGE_VECTORS],
        state[F.EDGE_INDEX][1],
        state[F.POSITIONS],
        state[F.BATCH],
        state[F.CELL].shape[0],
    )
    values, axes = principal_axes(cov)
    return values, axes, centroid


def neighbour_sums(state, geometry) -> torch.Tensor:
    """(N, 3) ``m_i = sum_j r_ij``: an equivariant vector per atom that translation,
    wrapping across periodic boundaries and the choice of cell leave unchanged."""
    vectors = geometry[F.EDGE_VECTORS]
    return scatter_sum(vectors, state[F.EDGE_INDEX][1], state[F.POSITIONS].shape[0])


def sign_pattern_weights(
    sign: torch.Tensor, ambiguous: torch.Tensor, proper_only: bool
) -> torch.Tensor:
    """(B, K) weight 1 for each sign pattern of :func:`sign_patterns` that agrees with
    ``sign`` (B, 3) on every axis not ``ambiguous`` (B, 3), 0 for the others: one frame
    where every sign is decided, both signs of each undecided axis otherwise."""
    patterns = sign_patterns(proper_only, sign.dtype, sign.device)  # (K, 3)
    agree = (patterns.unsqueeze(0) == sign.unsqueeze(1)) | ambiguous.unsqueeze(1)  # (B, K, 3)
    if proper_only:
        # With 4 proper patterns the last axis follows the other two: compare the free axes.
        agree[..., 2] = True
    return agree.all(dim=-1).to(sign.dtype)


def compact_frames(
    frames_: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, 3, 3) frames and (B, K) weights → the same with K' = the most frames any
    one structure weights, each structure's weighted frames first: every frame slot is a
    network call over the whole batch, so structures that each need one (different)
    frame cost one call, not one per distinct frame in the batch. Slots a structure does
    not weight get the identity frame and weight 0."""
    count = int((weights > 0).sum(dim=1).max()) if weights.numel() else 0
    order = torch.argsort(weights, dim=1, descending=True, stable=True)[:, : max(count, 1)]
    weights = torch.gather(weights, 1, order)
    index = order.view(*order.shape, 1, 1).expand(-1, -1, 3, 3)
    chosen = torch.gather(frames_, 1, index)
    identity = torch.eye(3, dtype=frames_.dtype, device=frames_.device)
    chosen = torch.where((weights > 0).view(*weights.shape, 1, 1), chosen, identity)
    return chosen, weights


def sign_patterns(proper_only: bool, dtype, device) -> torch.Tensor:
    """(K, 3) sign choices: 8 for O(3), the 4 that keep handedness for SO(3)."""
    patterns = torch.tensor(
        list(itertools.product([1.0, -1.0], repeat=3)), dtype=dtype, device=device
    )
    if proper_only:
        patterns = patterns[patterns.prod(dim=1) > 0]
    return patterns


def frames(axes: torch.Tensor, proper_only: bool) -> torch.Tensor:
    """(B, K, 3, 3) frames ``V diag(s)``; for SO(3) each is made a proper rotation."""
    patterns = sign_patterns(proper_only, axes.dtype, axes.device)  # (K, 3)
    frames_ = axes.unsqueeze(1) * patterns.view(1, -1, 1, 3)  # scale columns
    if proper_only:
        # The 4 patterns keep det(V diag(s)) = det(V); flip the last axis where det(V) = -1.
        flip = torch.det(axes).sign()  # (B,)
        last_axis = torch.stack([torch.ones_like(flip), torch.ones_like(flip), flip], dim=-1)
        frames_ = frames_ * last_axis.view(-1, 1, 1, 3)
    return frames_


def degeneracy(values: torch.Tensor) -> torch.Tensor:
    """(B,) smallest relative gap between eigenvalues (0 = degenerate frame)."""
    scale = values.abs().amax(dim=-1).clamp(min=1e-30)
    gaps = (values[:, 1:] - values[:, :-1]).abs().amin(dim=-1)
    return gaps / scale
