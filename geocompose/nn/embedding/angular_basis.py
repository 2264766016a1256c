"""Angles, torsions and the bases built on them, all NaN-safe (body order 3 and 4).

Pure functions plus one weight-free module, shared by the DimeNet++ and GemNet blocks:

* :func:`safe_atan2`, :func:`bond_angle`, :func:`dihedral`: angles from
  ``atan2(|a x b|, a . b)`` — never ``acos`` of a clamped dot, whose gradient is
  infinite at 0 and pi. Every function here has finite values *and* finite gradients
  for collinear triplets, planar or degenerate quadruplets and coincident atoms.
* :func:`legendre`: ``P_l(cos theta)``, the m = 0 spherical harmonics up to a factor.
* :func:`spherical_jn`: spherical Bessel functions ``j_l`` in torch, stable for all
  x >= 0 (power series below ``x = l + 1``, upward recurrence above), and
  :func:`spherical_bessel_roots` (scipy, once per model) for their zeros ``z_ln``.
* :class:`SphericalBesselRadial`: the radial half of DimeNet's 2D basis ``a_SBF``.
* :func:`torsion_harmonics`: ``Re/Im (x + i y)^m`` with ``x + i y = sin t1 sin t2
  e^{i phi}``, a torsion basis that is a polynomial in unit vectors, hence smooth even
  where the dihedral ``phi`` itself is undefined (a collinear end of the chain).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn

__all__ = [
    "SphericalBesselRadial",
    "bond_angle",
    "dihedral",
    "legendre",
    "safe_atan2",
    "spherical_bessel_roots",
    "spherical_jn",
    "spherical_jn_orders",
    "torsion_harmonics",
    "unit",
]


def safe_atan2(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``atan2(y, x)`` whose value is 0 and whose gradient is 0 (not NaN) at (0, 0)."""
    origin = (x == 0) & (y == 0)
    # Double `where`: the masked branch must see inputs with a finite derivative too.
    return torch.atan2(
        torch.where(origin, torch.zeros_like(y), y), torch.where(origin, torch.ones_like(x), x)
    )


def _safe_norm(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) → (...) norms with gradient 0 at the zero vector."""
    squared = (v * v).sum(-1)
    nonzero = squared > 0
    return torch.where(
        nonzero, torch.sqrt(torch.where(nonzero, squared, torch.ones_like(squared))), 0.0
    )


def unit(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """(..., 3) unit vectors; a zero vector (coincident atoms) maps to zero, finitely."""
    return v / _safe_norm(v).clamp(min=eps).unsqueeze(-1)


def bond_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle in [0, pi] between vectors ``a`` and ``b`` (..., 3), as
    ``atan2(|a x b|, a . b)``. Collinear pairs give exactly 0 or pi with a finite
    (zero) gradient; a zero vector gives 0."""
    return safe_atan2(_safe_norm(torch.linalg.cross(a, b)), (a * b).sum(-1))


def dihedral(
    b1: torch.Tensor, b2: torch.Tensor, b3: torch.Tensor, signed: bool = True
) -> torch.Tensor:
    """Dihedral angle of the chain with bond vectors ``b1, b2, b3`` (..., 3).

    ``phi = atan2(|b2| b1 . (b2 x b3), (b1 x b2) . (b2 x b3))`` in (-pi, pi]: the
    angle between the planes (b1, b2) and (b2, b3). It changes sign under a
    reflection, so a model reading it is SO(3)- but not O(3)-invariant.
    ``signed=False`` gives ``|phi|`` in [0, pi], invariant under reflections too.
    A planar chain gives 0 or pi; a collinear end (undefined plane) gives 0; all with
    finite gradients.
    """
    n1 = torch.linalg.cross(b1, b2)
    n2 = torch.linalg.cross(b2, b3)
    y = _safe_norm(b2) * (b1 * n2).sum(-1)
    x = (n1 * n2).sum(-1)
    return safe_atan2(y if signed else y.abs(), x)


def legendre(l_max: int, cos: torch.Tensor) -> torch.Tensor:
    """(...) cosines → (..., l_max + 1) Legendre polynomials ``P_0 .. P_lmax`` by the
    three-term recurrence; a polynomial, so smooth for any input (even |cos| > 1 by
    rounding)."""
    out = [torch.ones_like(cos)]
    if l_max >= 1:
        out.append(cos)
    for l in range(1, l_max):
        out.append(((2 * l + 1) * cos * out[l] - l * out[l - 1]) / (l + 1))
    return torch.stack(out, dim=-1)


def spherical_harmonics_m0(l_max: int, cos: torch.Tensor) -> torch.Tensor:
    """``Y_l^0 = sqrt((2l+1)/4pi) P_l(cos)`` for l = 0..l_max, shape (..., l_max + 1)."""
    norms = torch.tensor([math.sqrt((2 * l + 1) / (4 * math.pi)) for l in range(l_max + 1)])
    return legendre(l_max, cos) * norms.to(cos.dtype).to(cos.device)


def spherical_jn(l: int, x: torch.Tensor) -> torch.Tensor:
    """Spherical Bessel function of the first kind ``j_l(x)`` for ``x >= 0``.

    Below ``x = l + 1`` the upward recurrence from ``j_0, j_1`` loses digits (it grows
    the irregular solution ``y_l``), so there the power series
    ``j_l(x) = x^l/(2l+1)!! sum_k (-x^2/2)^k / (k! (2l+3)(2l+5)...(2l+2k+1))`` is used;
    above it, the recurrence ``j_{m+1} = (2m+1)/x j_m - j_{m-1}``. Both branches see
    safe inputs, so gradients are finite everywhere, x = 0 included.
    """
    threshold = float(l + 1)
    small = x < threshold
    xs = torch.where(small, x, torch.zeros_like(x))  # (...) series branch input
    xl = torch.where(small, torch.full_like(x, threshold), x)  # recurrence branch input
    # Series: terms shrink fast for x < l + 1; 16 + 2l terms reach float64 round-off.
    half_sq = -0.5 * xs * xs
    term = torch.ones_like(xs)
    total = torch.ones_like(xs)
    for k in range(1, 16 + 2 * l + 1):
        term = term * half_sq / (k * (2 * l + 2 * k + 1))
        total = total + term
    double_factorial = float(np.prod(np.arange(2 * l + 1, 0, -2, dtype=np.float64)))
    series = xs**l / double_factorial * total
    sin, cos = torch.sin(xl), torch.cos(xl)
    prev, cur = sin / xl, sin / (xl * xl) - cos / xl  # j_0, j_1
    for m in range(1, l):
        prev, cur = cur, (2 * m + 1) / xl * cur - prev
    # (not torch.sinc for l = 0: its second derivative at 0 is NaN; forces training needs it)
    return torch.where(small, series, prev if l == 0 else cur)


@functools.lru_cache(maxsize=16)
def spherical_bessel_roots(num_l: int, num_n: int) -> np.ndarray:
    """(num_l, num_n) first positive zeros ``z_ln`` of ``j_l``, by bracketing: zeros of
    ``j_l`` interlace those of ``j_{l-1}``, starting from ``z_0n = n pi`` (scipy's
    ``brentq`` on ``scipy.special.spherical_jn``; runs once per model, not per edge)."""
    from scipy.optimize import brentq
    from scipy.special import spherical_jn as jn

    zeros = np.zeros((num_l, num_n))
    points = np.arange(1, num_n + num_l) * np.pi  # zeros of j_0, enough to bracket all l
    zeros[0] = points[:num_n]
    for l in range(1, num_l):
        points = np.array(
            [
                brentq(lambda x, l=l: jn(l, x), points[i], points[i + 1])
                for i in range(len(points) - 1)
            ]
        )
        zeros[l] = points[:num_n]
    return zeros


class SphericalBesselRadial(nn.Module):
    """Radial half of DimeNet's basis: ``sqrt(2) / |j_{l+1}(z_ln)| * j_l(z_ln d / c)``.

    Per edge (not per triplet) — DimeNet's ``a_SBF(d_kj, alpha) = radial_ln(d_kj) *
    Y_l^0(alpha)`` factorises, so the radial part is evaluated once per edge and the
    angular part once per triplet. Orthonormal on [0, c] with weight ``x^2`` in
    ``x = d/c`` (DimeNet's ``sqrt(2/c^3)`` with ``c`` scaled out to keep values O(1)).

    Args:
        num_spherical: L, orders l = 0..L-1.
        num_radial: n, roots per order.
        cutoff: c in Å.
    """

    def __init__(self, num_spherical: int, num_radial: int, cutoff: float):
        super().__init__()
        roots = spherical_bessel_roots(num_spherical, num_radial)  # (L, n)
        from scipy.special import spherical_jn as jn

        norms = np.stack(
            [math.sqrt(2.0) / np.abs(jn(l + 1, roots[l])) for l in range(num_spherical)]
        )
        self.register_buffer("roots", torch.tensor(roots, dtype=torch.float64), persistent=False)
        self.register_buffer("norms", torch.tensor(norms, dtype=torch.float64), persistent=False)
        self.cutoff = cutoff
        self.num_spherical, self.num_radial = num_spherical, num_radial

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        """(E, 1) lengths → (E, L, n) basis values (no envelope applied)."""
        x = (lengths / self.cutoff)[:, :, None] * self.roots.to(lengths.dtype)  # (E, L, n)
        return spherical_jn_orders(x) * self.norms.to(lengths.dtype)


def spherical_jn_orders(x: torch.Tensor) -> torch.Tensor:
    """``j_l(x[..., l, :])`` for every order l at once, x of shape (..., L, n), x >= 0.

    The same two branches as :func:`spherical_jn`: the upward recurrence on every
    entry (order l's slice takes l steps), the power series only on the entries below
    ``x = l + 1`` (gathered, then put back), a small fraction of a crystal's edges, so
    it costs little forward and backward.
    """
    num_l = x.shape[-2]
    l = torch.arange(num_l, dtype=x.dtype, device=x.device)[:, None]  # (L, 1)
    small = x < l + 1.0
    xl = torch.where(small, (l + 1.0).expand_as(x), x)  # recurrence branch input, >= 1
    rows = []
    for lo in range(num_l):  # order l needs l recurrence steps, on its own slice only
        xo = xl[..., lo, :]
        sin = torch.sin(xo)
        prev, cur = sin / xo, (sin / xo - torch.cos(xo)) / xo  # j_0, j_1
        for m in range(1, lo):
            prev, cur = cur, (2 * m + 1) / xo * cur - prev
        rows.append(prev if lo == 0 else cur)
    out = torch.stack(rows, dim=-2)
    index = small.flatten().nonzero().flatten()  # (S,) entries for the series
    if index.numel() == 0:
        return out
    order = l.expand_as(x).flatten()[index].long()  # (S,)
    xs = x.flatten()[index]  # (S,)
    ratios = _series_ratios(num_l).to(x.dtype).to(x.device)[order]  # (S, K)
    squared = xs * xs
    # Term by term (each term = previous * x^2 * ratio), not Horner: Horner's gradient
    # multiplies ~x^(2K), which overflows float32 even where the terms underflow.
    term = ratios[:, 0]  # 1 / (2l+1)!!
    series = term
    for k in range(1, ratios.shape[1]):
        term = term * squared * ratios[:, k]
        series = series + term
    power = torch.ones_like(xs)  # x^l by products (pow's gradient at 0^0 is NaN)
    for m in range(1, num_l):
        power = torch.where(order >= m, power * xs, power)
    return out.flatten().index_put((index,), power * series).view_as(x)


@functools.lru_cache(maxsize=8)
def _series_ratios(num_l: int) -> torch.Tensor:
    """(L, K): ``1/(2l+1)!!``, then the ratios ``-1 / (2k (2l+2k+1))`` of consecutive
    terms of ``j_l(x) / x^l`` in powers of ``x^2``; K = 16 + 2L terms reach float64
    round-off for x < l + 1."""
    terms = 16 + 2 * num_l
    out = np.zeros((num_l, terms))
    for l in range(num_l):
        out[l, 0] = 1.0 / np.prod(np.arange(2 * l + 1, 0, -2, dtype=np.float64))
        out[l, 1:] = [-1.0 / (2 * k * (2 * l + 2 * k + 1)) for k in range(1, terms)]
    return torch.tensor(out, dtype=torch.float64)


def torsion_harmonics(
    u1: torch.Tensor, u2: torch.Tensor, u3: torch.Tensor, order: int, signed: bool
) -> torch.Tensor:
    """Smooth torsion basis of chains with unit bond vectors ``u1, u2, u3`` (..., 3).

    With ``x = (u1 x u2) . (u2 x u3) = sin t1 sin t2 cos phi`` and
    ``y = u1 . (u2 x u3) = sin t1 sin t2 sin phi`` (t1, t2 the bond angles, phi the
    dihedral), returns ``[Re z^m for m = 1..order]`` and, when ``signed``, also
    ``[Im z^m]``, where ``z = x + i y``: the m-dependence ``sin^m t e^{i m phi}`` of
    the spherical harmonics ``Y_l^m``, as GemNet uses them. Polynomials in the unit
    vectors: no division by ``|u1 x u2|``, so the basis tends to 0 (and stays smooth)
    as a bond angle goes to 0 or pi, where ``phi`` is undefined.

    ``Im z^m`` contains the triple product ``u1 . (u2 x u3)``, a pseudoscalar that
    flips sign under reflection (chiral: SO(3) only); ``Re z^m`` is even (O(3)).

    Returns:
        (..., order) or (..., 2 * order) when ``signed``.
    """
    c23 = torch.linalg.cross(u2, u3)
    x = (torch.linalg.cross(u1, u2) * c23).sum(-1)
    y = (u1 * c23).sum(-1)
    re, im = x, y
    reals, imags = [re], [im]
    for _ in range(1, order):
        re, im = re * x - im * y, re * y + im * x
        reals.append(re)
        imags.append(im)
    return torch.stack(reals + (imags if signed else []), dim=-1)
