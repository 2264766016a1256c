"""The SO(2) form of the edge tensor product (eSCN: Passaro & Zitnick, ICML 2023).

Rotating an edge onto the polar axis makes its spherical harmonics vanish except at
``m = 0``, so the Clebsch–Gordan product with them stops mixing all ``(m1, m3)``: per
output order ``l3`` it maps each pair ``(m, -m)`` of the input onto ``(m, -m)`` of the
output by a 2x2 block ``a I + b J`` (a rotation-commuting map), and ``m = 0`` onto
``m = 0``. Rotate in, apply the blocks, rotate back::

    TP(x, Y(r))_l3 = D_l3(R)^T  sum_{l2} w_l2(r) K^{l1 l2 l3} . (D_l1(R) x),   R r/|r| = e_y

``K^{l1 l2 l3} = sqrt(2 l3 + 1) C^{l1 l2 l3}[:, m2 = 0, :] Y_l2(e_y)`` is constant and
holds nonzeros only at ``|m1| = |m3|``: per channel the product costs O(L^3) (the
rotations) instead of the O(L^5) of the dense per-path matrices.

In e3nn's real basis the polar axis is ``y`` (``Y_l(e_y)`` is nonzero only at the middle
component, index ``l``) and a rotation about ``y`` turns the components ``(l + m, l - m)``
of every ``l`` as ``[[cos m t, -sin m t], [sin m t, cos m t]]``; this module relies on
both and its tests check them.

The rotation taking an edge to ``e_y`` is built without Euler angles (their ``acos`` has
an infinite derivative at the poles, which edges along ``+-y`` hit exactly): Rodrigues'
formula onto ``s e_y``, ``s`` the sign of the edge's ``y`` component, then a half turn
about ``x`` when ``s = -1``. Its denominator ``1 + |n_y|`` is at least 1, so there is no
singular edge; ``s`` is piecewise constant and the product does not depend on which
rotation about the edge was chosen, so the result and its gradients are smooth.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from geocompose.nn.ops.paths import MixingMode, PathPlan

__all__ = ["SO2Product", "edge_rotations", "wigner_d_matrices"]


def edge_rotations(vectors: torch.Tensor) -> torch.Tensor:
    """(E, 3) edge vectors → (E, 3, 3) proper rotations ``R`` with ``R n = e_y``.

    A zero vector (coincident atoms) gets the identity: finite, and its messages are
    zero anyway (the harmonics of the zero vector vanish for l > 0 and the envelope
    of a zero length is irrelevant to the direction).
    """
    n = vectors / vectors.norm(dim=-1, keepdim=True).clamp(min=1e-12)  # (E, 3)
    ny = n[:, 1]
    s = torch.where(ny < 0, -1.0, 1.0).to(n.dtype)  # (E,) the nearer pole, no gradient
    # v = n x (s e_y) = s (-n_z, 0, n_x); c = n . (s e_y) = |n_y|
    vx, vz = -s * n[:, 2], s * n[:, 0]
    zero = torch.zeros_like(vx)
    skew = torch.stack(  # [v]_x, (E, 3, 3)
        [
            torch.stack([zero, -vz, zero], -1),
            torch.stack([vz, zero, -vx], -1),
            torch.stack([zero, vx, zero], -1),
        ],
        dim=1,
    )
    eye = torch.eye(3, dtype=n.dtype, device=n.device).expand_as(skew)
    onto_pole = eye + skew + skew @ skew / (1.0 + ny.abs()).view(-1, 1, 1)  # R' n = s e_y
    # A half turn about x, diag(1, -1, -1), takes -e_y to e_y where s = -1.
    flip = torch.stack([torch.ones_like(s), s, s], -1).unsqueeze(-1)  # (E, 3, 1)
    return flip * onto_pole


def _coupling_to_next(l: int) -> torch.Tensor:
    """(2l - 1, 3, 2l + 1) isometry from ``(l - 1) x 1`` onto ``l`` (scaled Wigner 3j)."""
    return o3.wigner_3j(l - 1, 1, l, dtype=torch.float64) * (2 * l + 1) ** 0.5


def wigner_d_matrices(rotations: torch.Tensor, l_max: int) -> list[torch.Tensor]:
    """``[D_0(R), ..., D_{l_max}(R)]``, each (E, 2l + 1, 2l + 1), in e3nn's real basis.

    ``D_1(R) = R`` (e3nn's l = 1 basis is Cartesian) and
    ``D_l = Q^T (D_{l-1} (x) D_1) Q`` with ``Q`` the isometry of ``(l-1) x 1 -> l``:
    exact to rounding, differentiable, and free of Euler angles.
    """
    e = rotations.shape[0]
    mats = [rotations.new_ones(e, 1, 1), rotations]
    for l in range(2, l_max + 1):
        q = _coupling_to_next(l).to(rotations)  # (2l-1, 3, 2l+1)
        right = torch.einsum("ecd,bdk->ebck", rotations, q)  # (E, 2l-1, 3, 2l+1)
        both = torch.einsum("eab,ebck->eack", mats[-1], right)  # (E, 2l-1, 3, 2l+1)
        mats.append(torch.einsum("acj,each->ejh", q, both))
    return mats[: l_max + 1]


def _block_coefficients(k: torch.Tensor, l1: int, l3: int) -> torch.Tensor:
    """``K`` (2 l3 + 1, 2 l1 + 1) in the rotated frame → its ``2 min(l1, l3) + 1``
    coefficients ``[a_0, a_1, b_1, ..., a_m, b_m]`` with block ``m`` equal to
    ``a_m I + b_m J`` on components ``(l + m, l - m)``.

    Raises:
        ValueError: ``K`` has any other part (a programming error: it would mean the
            basis conventions this module relies on do not hold).
    """
    top = min(l1, l3)
    coefficients = [k[l3, l1]]
    rebuilt = torch.zeros_like(k)
    rebuilt[l3, l1] = k[l3, l1]
    for m in range(1, top + 1):
        pp, pm = k[l3 + m, l1 + m], k[l3 + m, l1 - m]
        mp, mm = k[l3 - m, l1 + m], k[l3 - m, l1 - m]
        a, b = (pp + mm) / 2, (mp - pm) / 2
        coefficients += [a, b]
        rebuilt[l3 + m, l1 + m], rebuilt[l3 - m, l1 - m] = a, a
        rebuilt[l3 + m, l1 - m], rebuilt[l3 - m, l1 + m] = -b, b
    if not torch.allclose(rebuilt, k, atol=1e-12):
        raise ValueError(f"the rotated coupling {l1} -> {l3} is not of SO(2) form")
    return torch.stack(coefficients)


class SO2Product(nn.Module):
    """The ``uvu`` edge product of a :class:`PathPlan` whose paths sharing an output
    segment are summed (:func:`~geocompose.nn.ops.paths.merge_second_orders`), computed
    in each edge's own frame (see the module doc). Same weights, layout and values as
    the Clebsch–Gordan product of that plan (tested to 1e-12 in float64): inputs and
    output are *component-major* (``(2l+1, mul)`` per segment), like
    :class:`~geocompose.nn.interaction.spherical.ChannelwiseProduct`.

    Args:
        plan: a ``uvu`` plan, second input of multiplicity 1, paths into a shared output
            segment differing only in ``l2``.
        relaxation: ``eps >= 0``. Above 0, every block ``m >= 1`` also gets
            ``eps (c_m S_1 + d_m S_2)`` with ``S_1 = diag(1, -1)``, ``S_2 = [[0, 1], [1, 0]]``
            (the 2x2 maps that do *not* commute with rotations about the edge), ``c, d``
            per edge and channel from extra weights: SCN-style relaxed equivariance,
            approximate and measured. At 0 those weights do not exist.
    """

    def __init__(self, plan: PathPlan, relaxation: float = 0.0):
        super().__init__()
        if plan.mode is not MixingMode.UVU or any(mul != 1 for mul, _ in plan.irreps_in2):
            raise ValueError("SO2Product needs a uvu plan whose second input has multiplicity 1")
        self.plan, self.relaxation = plan, float(relaxation)
        self.sizes1 = [mul * ir.dim for mul, ir in plan.irreps_in1]
        self.l_max = max(
            [ir.l for _, ir in plan.irreps_in1]
            + [ir.l for _, ir in plan.irreps_in2]
            + [ir.l for _, ir in plan.irreps_out]
        )
        self.sh_ls = [ir.l for _, ir in plan.irreps_in2]
        offsets = [0]
        for p in plan.paths:
            offsets.append(offsets[-1] + p.weight_numel)
        self.groups = []  # per output segment: (i_in1, mul, l1, l3, path weight ranges, sh)
        relaxed = plan.weight_numel
        for i_out, (mul, ir3) in enumerate(plan.irreps_out):
            members = [(i, p) for i, p in enumerate(plan.paths) if p.i_out == i_out]
            l1 = members[0][1].ir_in1.l
            top = min(l1, ir3.l)
            table = []
            for _, p in members:
                w3j = o3.wigner_3j(l1, p.ir_in2.l, ir3.l, dtype=torch.float64)
                # Per unit of the harmonic's m = 0 value: the edge's own value multiplies.
                k = ir3.dim**0.5 * w3j[:, p.ir_in2.l, :].T  # (2 l3 + 1, 2 l1 + 1)
                table.append(_block_coefficients(k, l1, ir3.l))
            self.register_buffer(f"table{i_out}", torch.stack(table))  # (paths, 2 top + 1)
            # The rotated frame keeps components |m| <= top, ordered m = 0, +1..+top, -1..-top.
            keep_in = [l1] + [l1 + m for m in range(1, top + 1)] + [l1 - m for m in range(1, top + 1)]
            keep_out = [ir3.l] + [ir3.l + m for m in range(1, top + 1)] + [
                ir3.l - m for m in range(1, top + 1)
            ]
            self.register_buffer(f"keep_in{i_out}", torch.tensor(keep_in))
            self.register_buffer(f"keep_out{i_out}", torch.tensor(keep_out))
            ranges = [(offsets[i], offsets[i + 1]) for i, _ in members]
            shs = [p.i_in2 for _, p in members]
            extra = (relaxed, relaxed + 2 * top * mul) if self.relaxation > 0 else None
            if extra is not None:
                relaxed = extra[1]
            self.groups.append((members[0][1].i_in1, mul, l1, ir3.l, top, ranges, shs, extra))
        self.weight_numel = relaxed  # the plan's weights, then the relaxation's

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor, wigner: list[torch.Tensor]
    ) -> torch.Tensor:
        """x1 (E, in1.dim) component-major, x2 (E, in2.dim) edge harmonics, weight
        (E, weight_numel), ``wigner`` from :func:`wigner_d_matrices` of the edges'
        :func:`edge_rotations` (up to ``self.l_max``) → (E, out.dim) component-major."""
        n = x1.shape[0]
        # Each input segment turned into its edge's frame once: (E, 2l+1, mul).
        rotated = [
            seg.reshape(n, ir.dim, mul) if ir.l == 0 else wigner[ir.l] @ seg.reshape(n, ir.dim, mul)
            for seg, (mul, ir) in zip(x1.split(self.sizes1, -1), self.plan.irreps_in1)
        ]
        # The harmonics' m = 0 value in each edge's frame, per l2: (E,).
        starts = torch.tensor([0] + [2 * l + 1 for l in self.sh_ls]).cumsum(0).tolist()
        poles = [
            (wigner[l][:, l, :] * x2[:, starts[i] : starts[i + 1]]).sum(-1)
            for i, l in enumerate(self.sh_ls)
        ]
        out = []
        for g, (i1, mul, l1, l3, top, ranges, shs, extra) in enumerate(self.groups):
            # Per-edge, per-channel weight of each summed path times its harmonic: (E, P, mul).
            w = torch.stack(
                [weight[:, a:b] * poles[s].unsqueeze(-1) for (a, b), s in zip(ranges, shs)], 1
            )
            coeff = torch.einsum("epu,pq->equ", w, getattr(self, f"table{g}"))  # (E, 2top+1, mul)
            x = rotated[i1].index_select(1, getattr(self, f"keep_in{g}"))  # (E, 2top+1, mul)
            y0 = coeff[:, :1] * x[:, :1]
            a, b = coeff[:, 1::2], coeff[:, 2::2]  # (E, top, mul) each
            xp, xm = x[:, 1 : top + 1], x[:, top + 1 :]
            yp, ym = a * xp - b * xm, b * xp + a * xm
            if extra is not None:
                relax = weight[:, extra[0] : extra[1]].reshape(n, 2, top, mul) * self.relaxation
                c, d = relax[:, 0], relax[:, 1]
                yp = yp + c * xp + d * xm
                ym = ym + d * xp - c * xm
            y = torch.cat([y0, yp, ym], 1)  # (E, 2top+1, mul), frame components kept
            back = wigner[l3].index_select(1, getattr(self, f"keep_out{g}")).transpose(1, 2)
            out.append((back @ y).reshape(n, (2 * l3 + 1) * mul))  # (E, (2 l3 + 1) mul)
        return torch.cat(out, dim=-1)

    def extra_repr(self) -> str:
        relaxed = f", relaxation {self.relaxation:g}" if self.relaxation > 0 else ""
        return f"SO(2) blocks for {len(self.groups)} output segments{relaxed}"
