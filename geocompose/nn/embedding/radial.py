"""Radial bases: expand an edge length into ``num`` invariant (``0e``) channels.

Signature of every basis: reads ``edge_lengths`` → writes ``edge_radial: num x 0e``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from geocompose.nn.block import BuildContext
from geocompose.nn.embedding.base import RadialBasis
from geocompose.registry import Kind, KnobModel, register
from geocompose.types.bounds import Size


class GaussianRadialParams(KnobModel):
    type: Literal["gaussian"] = "gaussian"
    num: Size = 50
    start: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    width: float | None = Field(
        default=None, gt=0.0, allow_inf_nan=False, description="Å; default: the centre spacing"
    )


@register(Kind.RADIAL)
class GaussianRadial(RadialBasis):
    """Gaussians on evenly spaced centres from ``start`` to the cutoff (SchNet).

    ``e_k(r) = exp(-(r - mu_k)^2 / (2 width^2))`` — Schütt et al., J. Chem. Phys. 148,
    241722 (2018). With the default width equal to the centre spacing this is PyG's
    ``GaussianSmearing``.

    YAML: ``radial: {type: gaussian, num: 50}``
    """

    Params = GaussianRadialParams

    def __init__(self, params: GaussianRadialParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        cutoff = ctx.cutoff
        centres = torch.linspace(params.start, cutoff, params.num, dtype=torch.float64)
        spacing = (cutoff - params.start) / max(params.num - 1, 1)
        width = params.width if params.width is not None else spacing
        self.register_buffer("centres", centres)
        self.coeff = -0.5 / width**2

    def of_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(E, 1) lengths → (E, num) basis values."""
        return torch.exp(self.coeff * (lengths - self.centres.to(lengths.dtype)) ** 2)


class BesselRadialParams(KnobModel):
    type: Literal["bessel"] = "bessel"
    num: Size = 8
    trainable: bool = False
    # DimeNet's sqrt(2/c) (orthonormal on [0, c]); false: PaiNN's sin(n pi r / c) / r.
    normalised: bool = True


@register(Kind.RADIAL)
class BesselRadial(RadialBasis):
    """Zeroth-order spherical Bessel functions (DimeNet, NequIP, MACE).

    ``e_n(r) = sqrt(2/c) sin(n pi r / c) / r`` — Gasteiger et al., ICLR 2020; with
    ``normalised: false`` PaiNN's ``sin(n pi r / c) / r`` (Schütt et al., ICML 2021),
    whose larger filter inputs (1 / 0.63 at 5 Å) trained PaiNN better on ethanol
    (docs/benchmarks.md). Written through ``sinc`` so that r = 0 (coincident atoms)
    gives the finite limit ``prefactor n pi / c`` with finite derivatives of every
    order, not 0/0.

    YAML: ``radial: {type: bessel, num: 8}``
    """

    Params = BesselRadialParams

    def __init__(self, params: BesselRadialParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        cutoff = ctx.cutoff
        freqs = torch.arange(1, params.num + 1, dtype=torch.float64) * math.pi / cutoff
        self.freqs = nn.Parameter(freqs, requires_grad=params.trainable)
        self.prefactor = math.sqrt(2.0 / cutoff) if params.normalised else 1.0

    def of_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        freqs = self.freqs.to(lengths.dtype)
        # sin(w r) / r = w * sin(x) / x with x = w r, through a safe sin(x)/x.
        return self.prefactor * freqs * sin_over_x(lengths * freqs)


def sin_over_x(x: torch.Tensor) -> torch.Tensor:
    """``sin(x) / x`` with its limit 1 at 0 and finite derivatives of every order there
    (``torch.sinc``'s second derivative is NaN at 0, which breaks force training when
    two atoms coincide): a Taylor series below |x| = 1e-2, the ratio above."""
    small = x.abs() < 1e-2
    safe = torch.where(small, torch.ones_like(x), x)
    x2 = x * x
    series = 1.0 - x2 / 6.0 + x2 * x2 / 120.0
    return torch.where(small, series, torch.sin(safe) / safe)
