"""The node update of the spherical family (TFN, NequIP, MACE): the equivariant
nonlinearities on the aggregated messages and the self-connection of the old features.

The edge tensor product that makes the messages lives in
:mod:`geocompose.nn.interaction.spherical`; this module is what the blocks do with the
aggregate, chosen by the ``nonlinearity`` and ``self_connection`` knobs.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from e3nn import nn as enn
from e3nn import o3
from e3nn.math import normalize2mom
from torch import nn

from geocompose.nn.activations import Activation, activation
from geocompose.nn.ops.paths import MixingMode, PathPlan, enumerate_paths
from geocompose.types import TypeRefusal

Nonlinearity = Literal["gate", "norm", "none"]
SelfConnection = Literal["species", "linear", "none"]


def scalars_and_rest(irreps: o3.Irreps) -> tuple[o3.Irreps, o3.Irreps]:
    scalars = o3.Irreps([(m, ir) for m, ir in irreps if ir.l == 0])
    rest = o3.Irreps([(m, ir) for m, ir in irreps if ir.l > 0])
    return scalars, rest


def _scalar_acts(scalars: o3.Irreps, act: Activation) -> list:
    # Odd scalars (0o) need an odd activation to stay 0o: tanh.
    return [activation(act) if ir.p == 1 else torch.tanh for _, ir in scalars]


class NormNonlinearity(nn.Module):
    """TFN's nonlinearity: ``act(s)`` on scalars, ``V * sigmoid(|V|_eps + b)`` on l > 0.

    ``|V|_eps = sqrt(|V|^2 + eps^2)`` with ``eps = 1e-6``: smooth everywhere, so a channel
    that is zero by symmetry (a vector on an atom of a perfect crystal) stays zero with
    finite gradients. Normalising ``V / |V|`` instead (e3nn ``NormActivation``) is
    discontinuous at 0 and amplifies rounding noise by ``1 / eps`` (measured: forces off
    by 1e-2 on fcc Cu).
    """

    def __init__(self, irreps: o3.Irreps, act: Activation):
        super().__init__()
        scalars, rest = scalars_and_rest(irreps)
        self.split = scalars.dim
        self.scalars = enn.Activation(scalars, _scalar_acts(scalars, act)) if scalars.dim else None
        self.rest = [(mul, ir.dim) for mul, ir in rest]
        self.bias = nn.Parameter(torch.zeros(rest.num_irreps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [self.scalars(x[:, : self.split])] if self.scalars is not None else []
        start, b = self.split, 0
        for mul, dim in self.rest:
            v = x[:, start : start + mul * dim].reshape(x.shape[0], mul, dim)  # (N, mul, 2l+1)
            norm = torch.sqrt((v * v).sum(-1) + 1e-12)  # (N, mul), smooth at 0
            gate = torch.sigmoid(norm + self.bias[b : b + mul])
            parts.append((v * gate.unsqueeze(-1)).reshape(x.shape[0], mul * dim))
            start, b = start + mul * dim, b + mul
        return torch.cat(parts, dim=-1)


class Gate(nn.Module):
    """NequIP's gate: the function, irreps and input order of e3nn's ``nn.Gate`` (scalars
    through ``act``, ``tanh`` for 0o; each l > 0 irrep times ``sigmoid`` of its own gate
    scalar; both activations scaled to unit second moment), in a handful of whole-tensor
    ops. e3nn's cuts its input one segment at a time and multiplies by the gates with an
    element-wise tensor product: measured as 3.4 ms of a 50 ms NequIP training step on 8
    ethanol molecules, where this one costs 1.1 ms (benchmarks/nequip_train_step.py).

    Args:
        scalars: the scalars written (0e and 0o).
        act: their activation (0o ones take ``tanh``).
        gated: the l > 0 irreps written, one gate scalar each.
    """

    def __init__(self, scalars: o3.Irreps, act: Activation, gated: o3.Irreps):
        super().__init__()
        scalars, gated = o3.Irreps(scalars).simplify(), o3.Irreps(gated).simplify()
        gates = o3.Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps else o3.Irreps("")
        # Read in e3nn's order: scalars, gates and gated concatenated, then sorted by irrep.
        reads = scalars + gates + gated
        irreps_in, position, _ = reads.sort()
        self.irreps_in = irreps_in.simplify()
        self.irreps_out = scalars + gated
        sorted_offsets = np.cumsum([0] + [mul * ir.dim for mul, ir in irreps_in])
        order = np.concatenate(
            [np.arange(mul * ir.dim) + sorted_offsets[position[i]] for i, (mul, ir) in
             enumerate(reads)] or [np.zeros(0, dtype=int)]
        )  # fmt: skip
        # Taken only when sorting moved a segment (0o scalars among 0e ones, say).
        self.reorder = not np.array_equal(order, np.arange(len(order)))
        self.register_buffer("order", torch.as_tensor(order, dtype=torch.long), persistent=False)
        # Each gated component's gate, by position among the gates.
        gate_of = np.concatenate(
            [np.repeat(np.arange(mul), ir.dim) + start for (mul, ir), start in
             zip(gated, np.cumsum([0] + [mul for mul, _ in gated]))] or [np.zeros(0, dtype=int)]
        )  # fmt: skip
        self.register_buffer(
            "gate_of", torch.as_tensor(gate_of, dtype=torch.long), persistent=False
        )
        self.sizes = [scalars.dim, gates.dim, gated.dim]
        self.scalar_sizes = [mul for mul, _ in scalars]
        self.scalar_acts = nn.ModuleList(normalize2mom(f) for f in _scalar_acts(scalars, act))
        self.gate_act = normalize2mom(torch.sigmoid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reorder:
            x = x.index_select(-1, self.order)
        s, g, v = x.split(self.sizes, -1)
        if len(self.scalar_acts) == 1:
            s = self.scalar_acts[0](s)
        elif self.scalar_acts:
            parts = s.split(self.scalar_sizes, -1)
            s = torch.cat([f(part) for f, part in zip(self.scalar_acts, parts)], -1)
        if not self.sizes[2]:  # nothing gated
            return s
        return torch.cat([s, v * self.gate_act(g).index_select(-1, self.gate_of)], -1)

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}"


def nonlinearity_input(kind: Nonlinearity, irreps: o3.Irreps) -> o3.Irreps:
    """What the nonlinearity writing ``irreps`` reads (pure; used by signatures): the gate
    needs one extra ``0e`` gate scalar per l > 0 irrep, after the scalars."""
    if kind != "gate":
        return irreps
    scalars, gated = scalars_and_rest(irreps)
    return scalars + o3.Irreps(f"{gated.num_irreps}x0e") + gated if gated.num_irreps else scalars


def nonlinearity(
    kind: Nonlinearity, irreps: o3.Irreps, act: Activation
) -> tuple[nn.Module, o3.Irreps]:
    """The nonlinearity writing ``irreps`` (sorted, scalars first) and the irreps it reads.

    ``gate`` (NequIP): scalars through ``act`` (``tanh`` for 0o), each l > 0 irrep times
    ``sigmoid`` of an extra ``0e`` gate scalar, so it reads ``irreps + n x 0e`` gates.
    """
    if kind == "none":
        return nn.Identity(), irreps
    if kind == "norm":
        return NormNonlinearity(irreps, act), irreps
    scalars, gated = scalars_and_rest(irreps)
    gate = Gate(scalars, act, gated)
    return gate, gate.irreps_in


class SpeciesSelfConnection(nn.Module):
    """``sc_i = W_{z_i} h_i``: a linear map per species (NequIP/MACE).

    Its weights, their initial values and their normalisation are those of e3nn's fully
    connected (``uvw``) tensor product of the features with the one-hot species, with the
    paths ``ir x 0e -> ir`` of :func:`~geocompose.nn.ops.paths.enumerate_paths` (the same
    instructions, in the same order, as e3nn's ``FullyConnectedTensorProduct``), held in
    ``tp`` so that the state dict is that product's. The product itself is not run: each
    atom's weights are picked by species in one gather and each path is one batched
    matmul (N atoms), where e3nn's forms the product with the one-hot. Measured on NequIP
    (8 ethanol molecules, a training step): 2.0 ms, against 3.2 ms for e3nn's product.
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, num_species: int):
        super().__init__()
        irreps_in, irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        species = o3.Irreps(f"{num_species}x0e")
        plan = enumerate_paths(irreps_in, species, irreps_out=irreps_out, mode=MixingMode.UVW)
        if isinstance(plan, TypeRefusal):  # no output irrep among the inputs: sc is zero
            plan = PathPlan(irreps_in, species, irreps_out, (), MixingMode.UVW)
        self.tp = plan.tensor_product(shared_weights=True)
        self.sizes_in = [mul * ir.dim for mul, ir in irreps_in]
        self.out_dims = [mul * ir.dim for mul, ir in irreps_out]
        # Each instruction's weights, shape (mul_in, species, mul_out), flattened one after
        # another in tp.weight: `picks[z]` are the positions of species z's (mul_in, mul_out)
        # blocks, and `scale` their fixed path normalisation (e3nn's path weight times its
        # Clebsch-Gordan coefficient for ir x 0e -> ir, a multiple of the identity).
        picks, scale, self.paths = [], [], []  # paths: (i_in, i_out, mul_in, mul_out, ir dim)
        offset, start = 0, 0
        for ins in self.tp.instructions:
            mul_in, _, mul_out = ins.path_shape
            ir = irreps_in[ins.i_in1].ir
            # e3nn's 3j symbol (l, 0, l) is +-identity / sqrt(2l + 1); its sign, exactly
            cg = math.copysign(1.0 / math.sqrt(ir.dim), float(o3.wigner_3j(ir.l, 0, ir.l)[0, 0, 0]))
            block = torch.arange(mul_in * num_species * mul_out).reshape(mul_in, num_species, -1)
            picks.append(offset + block.transpose(0, 1).reshape(num_species, -1))
            scale.append(torch.full((mul_in * mul_out,), ins.path_weight * cg))
            self.paths.append((ins.i_in1, ins.i_out, mul_in, mul_out, ir.dim, start))
            offset += block.numel()
            start += mul_in * mul_out
        self.register_buffer(
            "picks",
            torch.cat(picks, 1) if picks else torch.zeros(num_species, 0, dtype=torch.long),
            persistent=False,
        )
        self.register_buffer(
            "scale", torch.cat(scale) if scale else torch.zeros(0), persistent=False
        )

    def forward(self, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        # (species, sum of mul_in mul_out): each species' blocks, then each atom's row
        weights = (self.tp.weight[self.picks] * self.scale).index_select(0, species)
        inputs = x.split(self.sizes_in, -1)
        outputs: list[torch.Tensor | None] = [None] * len(self.out_dims)
        for i_in, i_out, mul_in, mul_out, dim, start in self.paths:
            w = weights[:, start : start + mul_in * mul_out].reshape(n, mul_in, mul_out)
            # (N, mul_out, mul_in) @ (N, mul_in, dim): e3nn's channel-major layout out
            y = torch.bmm(w.transpose(1, 2), inputs[i_in].reshape(n, mul_in, dim))
            y = y.reshape(n, mul_out * dim)
            outputs[i_out] = y if outputs[i_out] is None else outputs[i_out] + y
        return torch.cat(
            [x.new_zeros(n, d) if y is None else y for y, d in zip(outputs, self.out_dims)], -1
        )


class LinearSelfConnection(nn.Module):
    """``sc_i = W h_i`` (species-independent; TFN's self-interaction on the input)."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, num_species: int):
        super().__init__()
        self.linear = o3.Linear(irreps_in, irreps_out)

    def forward(self, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def self_connection(
    kind: SelfConnection, irreps_in, irreps_out, num_species: int
) -> nn.Module | None:
    if kind == "none":
        return None
    cls = SpeciesSelfConnection if kind == "species" else LinearSelfConnection
    return cls(irreps_in, irreps_out, num_species)


__all__ = [
    "Gate",
    "LinearSelfConnection",
    "Nonlinearity",
    "NormNonlinearity",
    "SelfConnection",
    "SpeciesSelfConnection",
    "nonlinearity",
    "nonlinearity_input",
    "scalars_and_rest",
    "self_connection",
]
