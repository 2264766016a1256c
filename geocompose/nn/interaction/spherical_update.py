"""The node update of the spherical family (TFN, NequIP, MACE): the equivariant
nonlinearities on the aggregated messages and the self-connection of the old features.

The edge tensor product that makes the messages lives in
:mod:`geocompose.nn.interaction.spherical`; this module is what the blocks do with the
aggregate, chosen by the ``nonlinearity`` and ``self_connection`` knobs.
"""

from __future__ import annotations

from typing import Literal

import torch
from e3nn import nn as enn
from e3nn import o3
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
    gates = o3.Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps else o3.Irreps("")
    gate = enn.Gate(
        scalars, _scalar_acts(scalars, act), gates, [torch.sigmoid] if gates else [], gated
    )
    return gate, gate.irreps_in


class SpeciesSelfConnection(nn.Module):
    """``sc_i = W_{z_i} h_i``: a linear map per species (NequIP/MACE), as the fully
    connected (``uvw``) tensor product of the features with the one-hot species, its paths
    ``ir x 0e -> ir`` from :func:`~geocompose.nn.ops.paths.enumerate_paths` (the same
    instructions, in the same order, as e3nn's ``FullyConnectedTensorProduct``)."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, num_species: int):
        super().__init__()
        self.num_species = num_species
        irreps_in, irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        species = o3.Irreps(f"{num_species}x0e")
        plan = enumerate_paths(irreps_in, species, irreps_out=irreps_out, mode=MixingMode.UVW)
        if isinstance(plan, TypeRefusal):  # no output irrep among the inputs: sc is zero
            plan = PathPlan(irreps_in, species, irreps_out, (), MixingMode.UVW)
        self.tp = plan.tensor_product(shared_weights=True)

    def forward(self, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(species, self.num_species).to(x.dtype)
        return self.tp(x, onehot)


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
