"""Cartesian scalar–vector features ⇄ e3nn irreps: the one place the layouts meet.

Cartesian blocks (PaiNN, GVP-GNN, the vector heads) compute with a pair
``(s, v)``: scalars ``s`` of shape ``(N, S)`` and vectors ``v`` of shape ``(N, V, 3)``
with the last axis ``(x, y, z)``. Between blocks the same numbers travel as one
e3nn field ``node_features`` with irreps ``"Sx0e + Vx1o"`` and shape ``(N, S + 3V)``.
Two facts make the conversion a pure reshape, and the tests check both:

* e3nn stores ``Vx1o`` channel-major: component ``c`` of channel ``k`` sits at
  ``offset + 3k + c``, so the block is ``v.reshape(N, 3V)``;
* e3nn's ``l = 1`` basis is Cartesian ``(x, y, z)`` with ``D(R) == R`` (no ``(y, z, x)``
  reordering), so a rotation acts on ``v`` as ``v @ R.T``.

:class:`CartesianLayout` reads any irreps made of ``0e`` and ``1o`` (in any order,
simplified or not) and writes the canonical ``"Sx0e + Vx1o"``. Everything else here is
NaN-safe vector algebra the Cartesian blocks share: norms, unit vectors and a
channel-mixing linear map that commutes with rotations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from e3nn import o3
from torch import nn

from geocompose.types import FieldType, TypeRefusal
from geocompose.types import fields as F
from geocompose.types.signature import require_all

SCALAR = o3.Irrep("0e")
VECTOR = o3.Irrep("1o")
NORM_SCALE = 1.0
"""Where :func:`vector_norm` turns from quadratic to linear (features are unitless)."""
NORM_EPSILON = NORM_SCALE**2
"""The default ``norm_epsilon`` of the Cartesian blocks: ``eps = scale^2`` under the root."""


def cartesian_irreps(num_scalars: int, num_vectors: int) -> o3.Irreps:
    """The canonical irreps ``"Sx0e + Vx1o"`` (a zero count is left out)."""
    parts = [(num_scalars, SCALAR), (num_vectors, VECTOR)]
    return o3.Irreps([(mul, ir) for mul, ir in parts if mul > 0])


@dataclass(frozen=True)
class CartesianLayout:
    """Where the ``0e`` and ``1o`` channels of some irreps lie in the flat vector.

    Args:
        irreps: the e3nn irreps (only ``0e`` and ``1o`` blocks).
        scalar_slices: column ranges of the ``0e`` blocks, in order.
        vector_slices: column ranges of the ``1o`` blocks, in order.
    """

    irreps: o3.Irreps
    scalar_slices: tuple[slice, ...]
    vector_slices: tuple[slice, ...]

    @classmethod
    def of(cls, irreps: o3.Irreps, *, skip_others: bool = False) -> CartesianLayout:
        """The layout of ``irreps``.

        Args:
            irreps: e3nn irreps.
            skip_others: read past irreps that are neither 0e nor 1o (a readout that
                uses only scalars and vectors); otherwise they raise ``ValueError``.
        """
        irreps = o3.Irreps(irreps)
        scalar, vector = [], []
        for sl, (mul, ir) in zip(irreps.slices(), irreps):
            if ir == SCALAR:
                scalar.append(sl)
            elif ir == VECTOR:
                vector.append(sl)
            elif mul > 0 and not skip_others:
                raise ValueError(f"{irreps} holds {ir}, which is neither 0e nor 1o")
        return cls(irreps, tuple(scalar), tuple(vector))

    @classmethod
    def canonical(cls, num_scalars: int, num_vectors: int) -> CartesianLayout:
        return cls.of(cartesian_irreps(num_scalars, num_vectors))

    @property
    def num_scalars(self) -> int:
        return sum(sl.stop - sl.start for sl in self.scalar_slices)

    @property
    def num_vectors(self) -> int:
        return sum(sl.stop - sl.start for sl in self.vector_slices) // 3

    @property
    def is_canonical(self) -> bool:
        return self.irreps == cartesian_irreps(self.num_scalars, self.num_vectors)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(..., S + 3V)`` irreps layout → scalars ``(..., S)``, vectors ``(..., V, 3)``.

        Views, not copies, when the irreps have one block of each kind.
        """
        lead = x.shape[:-1]
        s = _cat([x[..., sl] for sl in self.scalar_slices], lead, x)
        v = _cat([x[..., sl] for sl in self.vector_slices], lead, x)
        return s, v.reshape(*lead, self.num_vectors, 3)

    def join(self, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scalars ``(..., S)`` and vectors ``(..., V, 3)`` → ``(..., S + 3V)`` in this
        layout. Only canonical layouts (one block of each kind) are written."""
        if not self.is_canonical:
            raise ValueError(f"join writes canonical 'Sx0e + Vx1o' irreps, not {self.irreps}")
        if s.shape[-1] != self.num_scalars or v.shape[-2:] != (self.num_vectors, 3):
            raise ValueError(
                f"{self.irreps} needs ({self.num_scalars},) scalars and ({self.num_vectors}, 3) "
                f"vectors; got {tuple(s.shape)} and {tuple(v.shape)}"
            )
        return torch.cat([s, v.reshape(*v.shape[:-2], 3 * self.num_vectors)], dim=-1)


def _cat(parts: list[torch.Tensor], lead: torch.Size, like: torch.Tensor) -> torch.Tensor:
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return like.new_zeros(*lead, 0)
    return torch.cat(parts, dim=-1)


def to_cartesian(x: torch.Tensor, irreps: o3.Irreps) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, irreps.dim)`` → ``(s (N, S), v (N, V, 3))``; see :meth:`CartesianLayout.split`."""
    return CartesianLayout.of(irreps).split(x)


def from_cartesian(s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``s (N, S)``, ``v (N, V, 3)`` → ``(N, S + 3V)`` with irreps ``"Sx0e + Vx1o"``."""
    return CartesianLayout.canonical(s.shape[-1], v.shape[-2]).join(s, v)


def cartesian_input(found: FieldType, reader: str) -> CartesianLayout | TypeRefusal:
    """The layout a Cartesian block reads its node features with, or a typed refusal.

    Accepts scalars only (the block starts its vectors at zero) or scalars and ``1o``
    vectors; refuses pseudo-vectors, higher orders and feature sets without scalars.
    """
    try:
        layout = CartesianLayout.of(found.irreps)
    except (ValueError, TypeError):
        return TypeRefusal(
            f"{reader} reads node_features as 0e scalars and 1o vectors; upstream gives {found.irreps}",
            "keep only 0e + 1o channels upstream (a spherical block with l_max: 1, or "
            "{type: scalars} before this block)",
        )
    if layout.num_scalars == 0:
        return TypeRefusal(
            f"{reader} needs 0e channels in node_features; upstream gives {found.irreps}",
            "keep some scalar channels in the previous block",
        )
    return layout


# What every Cartesian message-passing block (PaiNN, GVP) reads.
CARTESIAN_READS = (
    F.NODE_FEATURES,
    F.EDGE_RADIAL,
    F.EDGE_ENVELOPE,
    F.EDGE_VECTORS,
    F.EDGE_LENGTHS,
    F.EDGE_INDEX,
)


def cartesian_reads(upstream, reader: str) -> tuple[dict, CartesianLayout] | TypeRefusal:
    """The fields a Cartesian message-passing block reads (:data:`CARTESIAN_READS`) and
    the layout of its node features, or the first typed refusal."""
    reads = require_all(upstream, CARTESIAN_READS, reader)
    if isinstance(reads, TypeRefusal):
        return reads
    layout = cartesian_input(reads[F.NODE_FEATURES], reader)
    if isinstance(layout, TypeRefusal):
        return layout
    return reads, layout


def vector_norm(v: torch.Tensor, scale: float = NORM_SCALE) -> torch.Tensor:
    """``(..., 3)`` → ``(...)``: a norm that is smooth at ``v = 0``.

    ``n(v) = sqrt(|v|^2 + a^2) - a`` (``a = scale``), written as
    ``|v|^2 / (sqrt(|v|^2 + a^2) + a)`` to avoid cancellation: ``|v|^2 / 2a`` near
    zero, ``|v| - a`` far from it, every derivative finite everywhere.

    Why not ``sqrt(|v|^2 + 1e-8)``: vector features vanish exactly wherever a site is
    inversion-symmetric (every atom of a perfect fcc crystal, an isolated atom), and
    a tiny epsilon leaves a cusp 1e-4 wide there: forces jump over 1e-4 Å and the
    Hessian (phonons, finite-difference checks) is ~1e4 times too large. A unit
    scale keeps the energy surface as smooth at those sites as anywhere else; the
    learned vector mixings set the effective scale.
    """
    squared = (v * v).sum(dim=-1)
    return squared / (torch.sqrt(squared + scale * scale) + scale)


def safe_unit(vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Unit vectors ``(E, 3)`` from vectors and their lengths ``(E, 1)``.

    A zero vector (coincident atoms) gets the zero vector, with zero gradient, instead
    of 0/0: the division only ever sees the length where it is positive.
    """
    positive = lengths > 0
    return torch.where(positive, vectors / torch.where(positive, lengths, 1.0), 0.0)


class VectorLinear(nn.Module):
    """Mixes vector channels, ``v'_k = sum_c W_kc v_c``: ``(..., C, 3)`` → ``(..., K, 3)``.

    No bias (a constant vector would break rotation equivariance); the same weights act
    on x, y and z, so the map commutes with every rotation and reflection.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        # Variance 1/fan_in (uniform in ±sqrt(3/fan_in)): the norm of a vector channel is
        # preserved on average, as Xavier init does for a square map (nn.Linear's default
        # shrinks it by sqrt(3) per layer, and stacked GVPs would start ~1e-3 small).
        bound = math.sqrt(3.0 / max(in_channels, 1))
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels).uniform_(-bound, bound))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return torch.einsum("kc,...cx->...kx", self.weight, v)

    def extra_repr(self) -> str:
        return f"{self.in_channels}x1o -> {self.out_channels}x1o"
