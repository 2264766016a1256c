"""Sign-equivariant frames: PCA axes whose signs a sign-equivariant rule decides.

PCA fixes each axis ``v_k`` of a structure only up to its sign. SignNet (Lim et al.,
ICLR 2023) answers that ambiguity with networks invariant to the sign; with a
*sign-equivariant* function ``g(-p) = -g(p)`` of the coordinates projected on an axis,
the axis ``sign(g(p_k)) v_k`` is the same whichever sign the eigen-solver returned, so
one frame per structure suffices (the choice Ma et al., NeurIPS 2023, make for
Laplacian eigenvectors).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, PositiveInt

from geocompose.nn.ops.scatter import scatter_sum
from geocompose.nn.symmetry.base import StrategyContext, average_over_frames, framed_group
from geocompose.nn.symmetry.frame_averaging import FrameStrategy
from geocompose.nn.symmetry.frames import (
    compact_frames,
    frames,
    neighbour_sums,
    sign_pattern_weights,
    structure_axes,
)
from geocompose.registry import Kind, KnobModel, register
from geocompose.types import fields as F
from geocompose.types.group import Group

# A rule value below this fraction of its own scale counts as zero (undecided).
UNDECIDED = 1e-8


class SignEquivariantFramesParams(KnobModel):
    type: Literal["sign_equivariant_frames"] = "sign_equivariant_frames"
    orders: tuple[PositiveInt, ...] = Field(
        default=(1, 3, 5),
        min_length=1,
        description=(
            "the odd-function orders n tried in turn, g_n(p) = sum_i Z_i p_i |p_i|^(n-1); "
            "a later one decides only the axes every earlier one left at zero"
        ),
    )
    on_tie: Literal["average", "keep"] = Field(
        default="average",
        description=(
            "an axis no order decides: 'average' both of its signs (exact, one more call); "
            "'keep' the eigen-solver's sign (one call, not invariant there)"
        ),
    )


@register(Kind.STRATEGY, exact=True, frames=True)
class SignEquivariantFrames(FrameStrategy):
    """One PCA frame per structure, each axis's sign chosen by a fixed sign-equivariant
    rule (after SignNet, Lim et al., ICLR 2023). With ``p_ik = m_i . v_k`` the projection
    of atom i's neighbour-vector sum ``m_i = sum_j r_ij`` on axis k and ``Z_i`` its
    atomic number, the rule of order n is::

        g_n(p_k) = sum_i Z_i p_ik |p_ik|^(n-1),     g_n(-p_k) = -g_n(p_k)

    and axis k is ``sign(g_n) v_k`` for the first order n in ``orders`` whose
    ``|g_n|`` exceeds ``1e-8 sum_i Z_i |p_ik|^n``. Order 1 is a charge-weighted dipole
    (zero for one species on a symmetric graph, where the sum of the m_i vanishes); 3
    and 5 are the higher odd moments. An axis no order decides gets both signs averaged
    (``on_tie: average``, exact) or keeps the eigen-solver's sign (``on_tie: keep``, one
    call). Where the tie comes from a mirror plane of the structure normal to the axis,
    both signs show the network the same atoms up to their order, so keeping one is
    harmless for a permutation-invariant network; a tie without such a mirror (or a
    cell whose rows the flip changes) is not, so ``keep`` makes the claim approximate.
    For SO(3) the third axis follows by handedness.

    Exact for O(3) and SO(3) wherever the covariance eigenvalues are distinct. Where
    they repeat (tetrahedra, cubes, planar rings, cubic crystals) the axes themselves
    are ill-defined, whatever the signs: the verifier measures those structures.
    The rule is fixed, not learned: a hard sign has no gradient, so a learned rule
    would need an objective of its own.

    YAML: ``strategy: {type: sign_equivariant_frames, orders: [1, 3, 5]}``
    """

    Params = SignEquivariantFramesParams
    needs = (*FrameStrategy.needs, F.ATOMIC_NUMBERS)

    @classmethod
    def signature(cls, params, upstream, ctx: StrategyContext):
        # Keeping an arbitrary sign on undecided axes is not invariant there: approximate.
        exact = params.on_tie == "average"
        return cls.wrapping(params, upstream, framed_group(ctx), exact=exact)

    def signs(self, projected, charge, batch, num_structures):
        """(B, 3) sign of each axis and (B, 3) whether no order decided it."""
        sign = torch.ones(num_structures, 3, dtype=projected.dtype, device=projected.device)
        undecided = torch.ones_like(sign, dtype=torch.bool)
        for n in self.params.orders:
            power = projected.abs() ** (n - 1)
            value = scatter_sum(charge * projected * power, batch, num_structures)  # (B, 3)
            size = scatter_sum(charge * projected.abs() * power, batch, num_structures)
            decided = undecided & (value.abs() > UNDECIDED * size)
            sign = torch.where(decided, torch.where(value > 0, 1.0, -1.0).to(sign.dtype), sign)
            undecided = undecided & ~decided
        return sign, undecided

    def forward(self, run, state, types, graph):
        geometry = graph(state)
        batch, num_structures = state[F.BATCH], state[F.CELL].shape[0]
        _, axes, centroid = structure_axes(state, geometry)
        projected = torch.einsum("ni,nij->nj", neighbour_sums(state, geometry), axes[batch])
        charge = state[F.ATOMIC_NUMBERS].to(projected.dtype).unsqueeze(1)  # (N, 1)
        sign, undecided = self.signs(projected, charge, batch, num_structures)
        if self.params.on_tie == "keep":
            undecided = torch.zeros_like(undecided)
        proper = self.claim is Group.SO3
        weights = sign_pattern_weights(sign, undecided, proper)  # (B, K)
        chosen, weights = compact_frames(frames(axes, proper_only=proper), weights)
        return average_over_frames(run, state, types, chosen, centroid, weights)
