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
        # Contiguous: einsum returns a permuted view, and CPU bmm on one copies per edge.
        mats.append(torch.einsum("acj,each->ejh", q, both).contiguous())
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


def _band_blocks(keys: list[tuple[int, int]], muls: list[int]):
    """A rotated layout: the segments with the same key ``(l, band)`` side by side as one
    ``(2 band + 1, sum of their mul)`` block of components ``m = -band..band`` (one
    matmul by ``D_l``, or by its ``band`` middle columns, turns them all).

    Returns ``(blocks, channel_offsets, size)``: per block ``(l, band, offset, width)``,
    per segment its first channel within its block, and the flat size."""
    blocks, offsets, base = [], [0] * len(keys), 0
    for l, band in sorted(set(keys)):
        width = 0
        for i, key in enumerate(keys):
            if key == (l, band):
                offsets[i], width = width, width + muls[i]
        blocks.append((l, band, base, width))
        base += (2 * band + 1) * width
    return blocks, offsets, base


class SO2Product(nn.Module):
    """The ``uvu`` edge product of a :class:`PathPlan` whose paths sharing an output
    segment are summed (:func:`~geocompose.nn.ops.paths.merge_second_orders`), computed
    in each edge's own frame (see the module doc). Same weights, layout and values as
    the Clebsch–Gordan product of that plan (tested to 1e-12 in float64): inputs and
    output are *component-major* (``(2l+1, mul)`` per segment), like
    :class:`~geocompose.nn.ops.channelwise.ChannelwiseProduct`.

    Every segment, block ``m`` and channel is a *slot*; a fixed number of gathers and
    products, and one matmul per order and direction, do all of them at once, whatever
    the number of paths.

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
        ins, outs = plan.irreps_in1, plan.irreps_out
        self.l_max = max(ir.l for irreps in (ins, plan.irreps_in2, outs) for _, ir in irreps)
        self.sh_ls = [ir.l for _, ir in plan.irreps_in2]
        self.in_sizes = [mul * ir.dim for mul, ir in ins]
        first = {p.i_out: p for p in reversed(plan.paths)}
        # Inputs turn whole; an output segment has components |m| <= min(l1, l3) only in
        # the edge's frame, so it turns back by that band of D_l3's columns alone.
        in_keys = [(ir.l, ir.l) for _, ir in ins]
        out_keys = [(ir.l, min(ir.l, first[g].ir_in1.l)) for g, (_, ir) in enumerate(outs)]
        self.in_blocks, in_chan, _ = _band_blocks(in_keys, [mul for mul, _ in ins])
        self.out_blocks, out_chan, out_size = _band_blocks(out_keys, [mul for mul, _ in outs])
        in_base = {(l, band): (base, width) for l, band, base, width in self.in_blocks}
        out_base = {(l, band): (base, width) for l, band, base, width in self.out_blocks}

        def at_in(i: int, k: int, u: int) -> int:  # segment i, component k = l + m, channel u
            base, width = in_base[in_keys[i]]
            return base + k * width + in_chan[i] + u

        def at_out(g: int, k: int, u: int) -> int:  # row m + band of its block
            base, width = out_base[out_keys[g]]
            l, band = out_keys[g]
            return base + (k - l + band) * width + out_chan[g] + u

        zero_slots, slots = [], []  # (g, u) and (g, m, u)
        for g, (mul, ir3) in enumerate(outs):
            i1, l1 = first[g].i_in1, first[g].ir_in1.l
            for u in range(mul):
                zero_slots.append((at_in(i1, l1, u), at_out(g, ir3.l, u)))
            for m in range(1, min(l1, ir3.l) + 1):
                for u in range(mul):
                    slots.append(
                        (
                            at_in(i1, l1 + m, u),
                            at_in(i1, l1 - m, u),
                            at_out(g, ir3.l + m, u),
                            at_out(g, ir3.l - m, u),
                        )
                    )
        n0, ns = len(zero_slots), len(slots)
        slot_of = {}  # (g, m, u) -> slot index, in the order of `slots`
        for g, (mul, ir3) in enumerate(outs):
            for m in range(1, min(first[g].ir_in1.l, ir3.l) + 1):
                for u in range(mul):
                    slot_of[(g, m, u)] = len(slot_of)
        zero_of = {}
        for g, (mul, _) in enumerate(outs):
            for u in range(mul):
                zero_of[(g, u)] = len(zero_of)
        self.split_slots = [n0, ns, ns]
        self.register_buffer("x0", torch.tensor([x for x, _ in zero_slots], dtype=torch.long))
        self.register_buffer("xp", torch.tensor([s[0] for s in slots], dtype=torch.long))
        self.register_buffer("xm", torch.tensor([s[1] for s in slots], dtype=torch.long))
        # The rotated output, band by band, gathered from [y0, y+, y-].
        source = torch.zeros(out_size, dtype=torch.long)
        for j, (_, o) in enumerate(zero_slots):
            source[o] = j
        for j, (_, _, op, om) in enumerate(slots):
            source[op], source[om] = n0 + j, n0 + ns + j
        self.register_buffer("assemble", source)
        # Each block's segments, to be put back in output order after turning.
        self.out_pieces = {(l, band): [] for l, band, _, _ in self.out_blocks}
        for g, (mul, _) in enumerate(outs):
            self.out_pieces[out_keys[g]].append((g, out_chan[g], mul))
        # Tied weights: coefficient [c0 | a | b] of each slot = sum over the paths of the
        # slot's segment of (table value) x (path weight of that channel) x (harmonic at m = 0).
        offsets, columns_sh, src, dst, values = 0, [], [], [], []
        for p in plan.paths:
            g, l1, l3 = p.i_out, p.ir_in1.l, p.ir_out.l
            w3j = o3.wigner_3j(l1, p.ir_in2.l, l3, dtype=torch.float64)
            k = p.ir_out.dim**0.5 * w3j[:, p.ir_in2.l, :].T  # (2 l3 + 1, 2 l1 + 1)
            table = _block_coefficients(k, l1, l3).tolist()  # [a0, a1, b1, ...]
            for u in range(p.mul_in1):
                entries = [(zero_of[(g, u)], table[0])]
                for m in range(1, min(l1, l3) + 1):
                    entries.append((n0 + slot_of[(g, m, u)], table[2 * m - 1]))
                    entries.append((n0 + ns + slot_of[(g, m, u)], table[2 * m]))
                for slot, value in entries:
                    if abs(value) > 1e-14:  # the parity rule zeroes a or b for each path
                        src.append(offsets + u)
                        dst.append(slot)
                        values.append(value)
            columns_sh += [p.i_in2] * p.weight_numel
            offsets += p.weight_numel
        self.tied_numel = offsets
        self.register_buffer("column_sh", torch.tensor(columns_sh, dtype=torch.long))
        self.register_buffer("tied_src", torch.tensor(src, dtype=torch.long))
        self.register_buffer("tied_dst", torch.tensor(dst, dtype=torch.long))
        self.register_buffer("tied_value", torch.tensor(values, dtype=torch.float64))
        self.num_slots = n0 + 2 * ns
        self.relaxed_numel = 2 * ns if self.relaxation > 0 else 0
        self.weight_numel = self.tied_numel + self.relaxed_numel  # the plan's, then relaxation's
        self.segments = len(outs)

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor, wigner: list[torch.Tensor]
    ) -> torch.Tensor:
        """x1 (E, in1.dim) component-major, x2 (E, in2.dim) edge harmonics, weight
        (E, weight_numel), ``wigner`` from :func:`wigner_d_matrices` of the edges'
        :func:`edge_rotations` (up to ``self.l_max``) → (E, out.dim) component-major."""
        n = x1.shape[0]
        segments = x1.split(self.in_sizes, -1)
        rotated = []  # per order: (E, (2l+1) width), every segment of that order turned at once
        for l, _, _, width in self.in_blocks:
            parts = [
                seg.reshape(n, ir.dim, mul)
                for seg, (mul, ir) in zip(segments, self.plan.irreps_in1)
                if ir.l == l
            ]
            block = parts[0] if len(parts) == 1 else torch.cat(parts, -1)
            rotated.append((block if l == 0 else wigner[l] @ block).reshape(n, (2 * l + 1) * width))
        x = torch.cat(rotated, -1).t().contiguous()  # (in slots, E)
        # The harmonics' m = 0 value in each edge's frame, per segment of x2: (n_sh, E).
        harmonics = x2.split([2 * l + 1 for l in self.sh_ls], -1)
        poles = torch.stack(
            [
                y[:, 0] if l == 0 else (wigner[l][:, l, :] * y).sum(-1)
                for l, y in zip(self.sh_ls, harmonics)
            ]
        )
        tied = weight[:, : self.tied_numel].t() * poles.index_select(0, self.column_sh)
        contributions = tied.index_select(0, self.tied_src) * self.tied_value.unsqueeze(1)
        coeff = x.new_zeros(self.num_slots, n).index_add(0, self.tied_dst, contributions)
        c0, a, b = coeff.split(self.split_slots, 0)
        xp, xm = x.index_select(0, self.xp), x.index_select(0, self.xm)
        yp, ym = a * xp - b * xm, b * xp + a * xm
        if self.relaxed_numel:
            c, d = (weight[:, self.tied_numel :].t() * self.relaxation).chunk(2, 0)
            yp, ym = yp + c * xp + d * xm, ym + d * xp - c * xm
        y0 = c0 * x.index_select(0, self.x0)
        y = torch.cat([y0, yp, ym], 0).index_select(0, self.assemble).t()  # (E, out slots)
        pieces = {}
        sizes = [(2 * band + 1) * width for _, band, _, width in self.out_blocks]
        for (l, band, _, width), part in zip(self.out_blocks, y.split(sizes, -1)):
            block = part.reshape(n, 2 * band + 1, width)
            if l:  # D_l3^T restricted to the band's columns, contiguous for bmm
                back = wigner[l][:, l - band : l + band + 1, :].transpose(1, 2).contiguous()
                block = back @ block  # (E, 2 l3 + 1, width)
            for g, start, mul in self.out_pieces[(l, band)]:
                pieces[g] = block[:, :, start : start + mul].reshape(n, (2 * l + 1) * mul)
        return torch.cat([pieces[g] for g in range(len(pieces))], -1)

    def extra_repr(self) -> str:
        relaxed = f", relaxation {self.relaxation:g}" if self.relaxation > 0 else ""
        return f"SO(2) blocks for {self.segments} output segments{relaxed}"
