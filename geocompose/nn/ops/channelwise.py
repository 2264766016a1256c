"""The channel-wise ``uvu`` edge product of the spherical family (TFN, NequIP, MACE).

:class:`ChannelwiseProduct` runs a ``uvu`` :class:`~geocompose.nn.ops.paths.PathPlan`
whose second input is one copy of each harmonic order, one small batched matmul per
path, in the component-major layout of :func:`component_major`. Moved out of
``nn/interaction/spherical.py`` (which re-exports these names) to keep that module small.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from geocompose.nn.ops.paths import MixingMode, PathPlan


class _CatSplitBackward(torch.autograd.Function):
    """``torch.cat(parts, -1)`` whose backward is one ``split``. torch.cat's backward cuts
    the gradient with one ``narrow`` per part, and the second backward of a training
    step (forces with ``create_graph``, then the loss) zero-fills a full-size tensor per
    narrow: 7 of (edges, 672) per MACE layer, measured as the largest ``fill_`` of a
    training step on 8 ethanol molecules. ``split``'s own backward is one ``cat``."""

    @staticmethod
    def forward(ctx, sizes: list[int], *parts: torch.Tensor) -> torch.Tensor:
        ctx.sizes = sizes
        return torch.cat(parts, dim=-1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return (None, *grad.split(ctx.sizes, dim=-1))


def cat_last(parts: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along the last dimension, with a ``split`` backward (see
    :class:`_CatSplitBackward`)."""
    if len(parts) == 1:
        return parts[0]
    return _CatSplitBackward.apply([p.shape[-1] for p in parts], *parts)


def component_major(x: torch.Tensor, irreps: o3.Irreps) -> torch.Tensor:
    """(R, dim) from e3nn's channel-major layout (each segment ``(mul, 2l+1)``) to the
    component-major one (each segment ``(2l+1, mul)``) that :class:`ChannelwiseProduct` uses."""
    n, parts = x.shape[0], x.split([mul * ir.dim for mul, ir in irreps], -1)
    blocks = [p.reshape(n, mul, ir.dim).transpose(1, 2) for p, (mul, ir) in zip(parts, irreps)]
    return torch.cat([b.reshape(n, b.shape[1] * b.shape[2]) for b in blocks], -1)


def channel_major(x: torch.Tensor, irreps: o3.Irreps) -> torch.Tensor:
    """The inverse of :func:`component_major`."""
    n, parts = x.shape[0], x.split([mul * ir.dim for mul, ir in irreps], -1)
    blocks = [p.reshape(n, ir.dim, mul).transpose(1, 2) for p, (mul, ir) in zip(parts, irreps)]
    return torch.cat([b.reshape(n, b.shape[1] * b.shape[2]) for b in blocks], -1)


class ChannelwiseProduct(nn.Module):
    """The ``uvu`` product of a :class:`PathPlan` whose second input has multiplicity 1
    (edge harmonics), one small batched matmul per path. Same weights and normalisation as
    ``plan.tensor_product()``; inputs and output are *component-major* (see
    :func:`component_major`), so that the matmul runs over the channels (tested equal to
    e3nn, gradients included). Blocks convert at node level, before gathering senders and
    after aggregating, where there are N rows instead of E.

    Per path ``l1 x l2 -> l3`` and edge ``z``: ``M_z = sqrt(2 l3 + 1) C . Y_z^{l2}`` is a
    ``(2 l3 + 1, 2 l1 + 1)`` matrix (``C`` e3nn's Wigner 3j) and the output block is
    ``M_z @ (x_z * w_z)`` with ``x_z`` ``(2 l1 + 1, mul)``: weights on the small input side.
    Measured on 2,742 edges x 128 channels: 2-5x faster forward than the channel-major
    ``(mul, 2l1+1) @ (2l1+1, 2l3+1)`` form, which is 1.3x faster than e3nn's.
    """

    def __init__(self, plan: PathPlan):
        super().__init__()
        if plan.mode is not MixingMode.UVU or any(mul != 1 for mul, _ in plan.irreps_in2):
            raise ValueError(
                "ChannelwiseProduct needs a uvu plan whose second input has multiplicity 1"
            )
        self.plan = plan
        # Inputs are cut with `split` (one cat in backward), never with per-path slices
        # (each slice's backward zero-fills a full-size gradient: measured 20% of the
        # forward+forces time of MACE on 512 Cu atoms).
        self.sizes1 = [mul * ir.dim for mul, ir in plan.irreps_in1]
        self.sizes2 = [mul * ir.dim for mul, ir in plan.irreps_in2]
        ordered = sorted(plan.paths, key=lambda p: p.i_out)
        self.weight_sizes = [p.weight_numel for p in ordered]
        self.paths = []  # (i_in1, mul, d1, i_in2, d3), in output order
        for i, path in enumerate(ordered):
            cg = o3.wigner_3j(path.ir_in1.l, path.ir_in2.l, path.ir_out.l) * path.ir_out.dim**0.5
            self.register_buffer(
                f"cg{i}", cg.reshape(path.ir_in1.dim, path.ir_in2.dim, path.ir_out.dim)
            )
            self.paths.append(
                (path.i_in1, path.mul_in1, path.ir_in1.dim, path.i_in2, path.ir_out.dim)
            )
        self.weight_numel = sum(self.weight_sizes)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """x1 (E, in1.dim) component-major, x2 (E, in2.dim), weight (E, weight_numel) →
        (E, out.dim) component-major."""
        n = x1.shape[0]
        sizes = zip(x1.split(self.sizes1, -1), self.plan.irreps_in1)
        segments1 = [seg.reshape(n, ir.dim, mul) for seg, (mul, ir) in sizes]
        segments2 = x2.split(self.sizes2, -1)
        weights = weight.split(self.weight_sizes, -1)
        out = []
        for i, (i1, mul, d1, i2, d3) in enumerate(self.paths):
            m = torch.einsum("zj,ijk->zki", segments2[i2], getattr(self, f"cg{i}"))  # (E, d3, d1)
            x = segments1[i1] * weights[i].unsqueeze(1)  # (E, d1, mul)
            # An outer product for scalar inputs; otherwise (d3, d1) @ (d1, mul) per edge.
            # Plain bmm: a custom backward on contiguous copies of the operands was no
            # faster on torch 2.13 (plain took 0.95-1.02x its time in MACE and NequIP
            # training steps and forces, and 0.3-0.8x on its own; docs/benchmarks.md).
            y = m * x if d1 == 1 else torch.bmm(m, x)  # (E, d3, mul)
            out.append(y.reshape(n, d3 * mul))
        return cat_last(out)
