"""Envelopes: take edge contributions to zero at the cutoff.

An envelope registered ``smooth=True`` must make the energy continuous across the
cutoff; the verifier tests that claim by moving an atom through the cutoff.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from geocompose.registry import Kind, KnobModel, register
from geocompose.types.bounds import Size


class CosineEnvelopeParams(KnobModel):
    type: Literal["cosine"] = "cosine"


@register(Kind.ENVELOPE, smooth=True)
class CosineEnvelope(nn.Module):
    """``u(r) = (cos(pi r / c) + 1) / 2`` inside the cutoff, 0 outside (SchNet, Behler).

    Continuous with a continuous first derivative at r = c.

    YAML: ``envelope: {type: cosine}``
    """

    Params = CosineEnvelopeParams

    def __init__(self, params: CosineEnvelopeParams, cutoff: float):
        super().__init__()
        self.cutoff = cutoff

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        inside = lengths < self.cutoff
        value = 0.5 * (torch.cos(lengths * (math.pi / self.cutoff)) + 1.0)
        return torch.where(inside, value, torch.zeros_like(value))


class PolynomialEnvelopeParams(KnobModel):
    type: Literal["polynomial"] = "polynomial"
    p: Size = 6


@register(Kind.ENVELOPE, smooth=True)
class PolynomialEnvelope(nn.Module):
    """DimeNet's polynomial envelope, smooth to order ``p`` at the cutoff.

    ``u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)``, ``x = r/c`` —
    Gasteiger et al., ICLR 2020 (p = 6 in NequIP and MACE).

    YAML: ``envelope: {type: polynomial, p: 6}``
    """

    Params = PolynomialEnvelopeParams

    def __init__(self, params: PolynomialEnvelopeParams, cutoff: float):
        super().__init__()
        self.cutoff = cutoff
        self.p = params.p

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        p = self.p
        x = lengths / self.cutoff
        value = (
            1.0
            - 0.5 * (p + 1) * (p + 2) * x**p
            + p * (p + 2) * x ** (p + 1)
            - 0.5 * p * (p + 1) * x ** (p + 2)
        )
        return torch.where(x < 1.0, value, torch.zeros_like(value))


class HardEnvelopeParams(KnobModel):
    type: Literal["hard"] = "hard"


@register(Kind.ENVELOPE, smooth=False)
class HardEnvelope(nn.Module):
    """A step: 1 inside the cutoff, 0 outside. Energies jump when an atom crosses it.

    Registered ``smooth=False``, so a model using it makes no continuity claim.

    YAML: ``envelope: {type: hard}``
    """

    Params = HardEnvelopeParams

    def __init__(self, params: HardEnvelopeParams, cutoff: float):
        super().__init__()
        self.cutoff = cutoff

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths < self.cutoff).to(lengths.dtype)
