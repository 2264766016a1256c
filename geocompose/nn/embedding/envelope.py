"""Envelopes: take edge contributions to zero at the cutoff.

An envelope registered ``smooth=True`` must make the energy continuous across the
cutoff; the verifier tests that claim by moving an atom through the cutoff.
Signature of every envelope: reads ``edge_lengths`` → writes ``edge_envelope: 1x0e``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from geocompose.nn.embedding.base import Envelope
from geocompose.registry import Kind, KnobModel, register
from geocompose.types.bounds import Size


class CosineEnvelopeParams(KnobModel):
    type: Literal["cosine"] = "cosine"


@register(Kind.ENVELOPE, smooth=True)
class CosineEnvelope(Envelope):
    """``u(r) = (cos(pi r / c) + 1) / 2`` inside the cutoff, 0 outside (SchNet, Behler).

    Continuous with a continuous first derivative at r = c.

    YAML: ``envelope: {type: cosine}``
    """

    Params = CosineEnvelopeParams

    def of_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        inside = lengths < self.cutoff
        value = 0.5 * (torch.cos(lengths * (math.pi / self.cutoff)) + 1.0)
        return torch.where(inside, value, torch.zeros_like(value))


class PolynomialEnvelopeParams(KnobModel):
    type: Literal["polynomial"] = "polynomial"
    p: Size = 6


@register(Kind.ENVELOPE, smooth=True)
class PolynomialEnvelope(Envelope):
    """DimeNet's polynomial envelope, smooth to order ``p`` at the cutoff.

    ``u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)``, ``x = r/c`` —
    Gasteiger et al., ICLR 2020 (p = 6 in NequIP and MACE).

    YAML: ``envelope: {type: polynomial, p: 6}``
    """

    Params = PolynomialEnvelopeParams

    def of_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return polynomial_envelope(lengths, self.cutoff, self.params.p)


def polynomial_envelope(lengths: torch.Tensor, cutoff: float, p: int) -> torch.Tensor:
    """The polynomial envelope of order ``p`` at ``cutoff``, 0 beyond it (also used by
    blocks that need an envelope at a radius of their own, e.g. GemNet's torsions)."""
    x = lengths / cutoff
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
class HardEnvelope(Envelope):
    """A step: 1 inside the cutoff, 0 outside. Energies jump when an atom crosses it.

    Registered ``smooth=False``, so a model using it makes no continuity claim.

    YAML: ``envelope: {type: hard}``
    """

    Params = HardEnvelopeParams

    def of_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return (lengths < self.cutoff).to(lengths.dtype)
