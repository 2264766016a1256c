"""Angles, torsions and bases: values against references, finite gradients everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import spherical_jn as scipy_jn

from geocompose.data.rotations import haar_rotations
from geocompose.nn.embedding import angular_basis as A

D = torch.float64


def grad_of(f, *tensors):
    leaves = [t.clone().requires_grad_(True) for t in tensors]
    grads = torch.autograd.grad(f(*leaves).sum(), leaves, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, leaves)]


@pytest.mark.parametrize("l", range(9))
def test_spherical_jn_matches_scipy_and_has_finite_gradients(l):
    x = torch.linspace(0.0, 40.0, 2001, dtype=D)
    np.testing.assert_allclose(A.spherical_jn(l, x).numpy(), scipy_jn(l, x.numpy()), atol=1e-14)
    # float32 stays accurate too: the series covers x < l + 1, where recurrence fails.
    np.testing.assert_allclose(
        A.spherical_jn(l, x.float()).double().numpy(), scipy_jn(l, x.numpy()), atol=1e-6
    )
    (g,) = grad_of(lambda t: A.spherical_jn(l, t), x)
    assert torch.isfinite(g).all()
    np.testing.assert_allclose(
        g[1:].numpy(), scipy_jn(l, x[1:].numpy(), derivative=True), atol=1e-12
    )


def test_bessel_roots_are_zeros_and_interlace():
    roots = A.spherical_bessel_roots(7, 6)
    for l in range(7):
        assert np.abs(scipy_jn(l, roots[l])).max() < 1e-10
        assert (np.diff(roots[l]) > 0).all()
    assert (roots[1:, :-1] > roots[:-1, :-1]).all() and (roots[1:, :-1] < roots[:-1, 1:]).all()


def test_spherical_radial_is_orthonormal_on_the_unit_ball():
    basis = A.SphericalBesselRadial(4, 5, cutoff=2.0)
    r = torch.linspace(0.0, 2.0, 20001, dtype=D)[:, None]
    values = basis(r)  # (R, L, n)
    x = (r / 2.0).flatten()
    for l in range(4):
        f = values[:, l, :]  # (R, n)
        gram = torch.trapezoid(f[:, :, None] * f[:, None, :] * (x**2)[:, None, None], x, dim=0)
        torch.testing.assert_close(gram, torch.eye(5, dtype=D), atol=1e-6, rtol=0)


def test_legendre_matches_numpy():
    c = torch.linspace(-1, 1, 101, dtype=D)
    got = A.legendre(6, c)
    for l in range(7):
        ref = np.polynomial.legendre.legval(c.numpy(), [0] * l + [1])
        np.testing.assert_allclose(got[:, l].numpy(), ref, atol=1e-14)


vectors = st.lists(st.floats(-3, 3), min_size=3, max_size=3).map(lambda v: torch.tensor(v, dtype=D))


@settings(max_examples=50, deadline=None)
@given(vectors, vectors)
def test_bond_angle_matches_acos_where_that_is_safe(a, b):
    na, nb = a.norm(), b.norm()
    if na < 1e-3 or nb < 1e-3:
        return
    cos = float((a @ b) / (na * nb))
    if abs(cos) > 0.999:
        return
    assert math.isclose(float(A.bond_angle(a, b)), math.acos(cos), abs_tol=1e-12)


def test_bond_angle_collinear_and_zero_vectors_are_finite_with_finite_gradients():
    a = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0.0, 0, 0], [0.0, 0, 0]], dtype=D)
    b = torch.tensor([[2.0, 0, 0], [-3.0, 0, 0], [1.0, 0, 0], [0.0, 0, 0]], dtype=D)
    torch.testing.assert_close(A.bond_angle(a, b), torch.tensor([0.0, math.pi, 0.0, 0.0], dtype=D))
    for g in grad_of(A.bond_angle, a, b):
        assert torch.isfinite(g).all()
    # acos of a clamped dot is what this replaces: its gradient is infinite at 0 and pi.
    leaf = a[:2].clone().requires_grad_(True)
    cos = (leaf * b[:2]).sum(1) / (leaf.norm(dim=1) * b[:2].norm(dim=1))
    (g,) = torch.autograd.grad(torch.acos(cos.clamp(-1, 1)).sum(), leaf)
    assert not torch.isfinite(g).all()


def chain(phi: float, t1: float = 1.9, t2: float = 2.0):
    """Bond vectors b1, b2, b3 of points p0..p3 with bond angles t1 (at p1), t2 (at p2)
    and dihedral phi: p1 = 0, p2 = x, p0 = (cos t1, sin t1, 0)."""
    b1 = -torch.tensor([math.cos(t1), math.sin(t1), 0.0], dtype=D)
    b2 = torch.tensor([1.0, 0.0, 0.0], dtype=D)
    b3 = torch.tensor(
        [-math.cos(t2), math.sin(t2) * math.cos(phi), math.sin(t2) * math.sin(phi)], dtype=D
    )
    return b1, b2, b3


@pytest.mark.parametrize("phi", [0.3, 1.2, -2.0, 3.0])
def test_dihedral_sign_and_reflection(phi):
    b1, b2, b3 = chain(phi)
    got = float(A.dihedral(b1, b2, b3))
    assert math.isclose(got, phi, abs_tol=1e-12)
    mirror = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=D))
    flipped = float(A.dihedral(b1 @ mirror, b2 @ mirror, b3 @ mirror))
    assert math.isclose(flipped, -got, abs_tol=1e-12)
    unsigned = [
        float(A.dihedral(*(v @ m for v in (b1, b2, b3)), signed=False))
        for m in (torch.eye(3, dtype=D), mirror)
    ]
    assert math.isclose(unsigned[0], unsigned[1], abs_tol=1e-14) and math.isclose(
        unsigned[0], abs(phi), abs_tol=1e-12
    )
    rotation = haar_rotations(1, torch.Generator().manual_seed(1), dtype=D)[0]
    assert math.isclose(
        float(A.dihedral(b1 @ rotation, b2 @ rotation, b3 @ rotation)), got, abs_tol=1e-12
    )


def test_degenerate_torsions_are_finite_with_finite_gradients():
    x, y = torch.tensor([1.0, 0, 0], dtype=D), torch.tensor([0, 1.0, 0], dtype=D)
    cases = [
        (y, x, -y),  # planar cis: phi = 0
        (y, x, y),  # planar trans: phi = pi
        (x, x, y),  # collinear first bond: plane undefined
        (y, x, 2 * x),  # collinear last bond
        (x, 2 * x, 3 * x),  # fully collinear
        (torch.zeros(3, dtype=D), x, y),  # coincident atoms
    ]
    b1, b2, b3 = (torch.stack(c) for c in zip(*cases))
    values = A.dihedral(b1, b2, b3)
    assert torch.isfinite(values).all()
    assert math.isclose(float(values[0]), 0.0, abs_tol=1e-15) and math.isclose(
        abs(float(values[1])), math.pi
    )
    for signed in (True, False):
        for g in grad_of(lambda *v, signed=signed: A.dihedral(*v, signed=signed), b1, b2, b3):
            assert torch.isfinite(g).all()
    for g in grad_of(lambda *v: A.torsion_harmonics(*(A.unit(t) for t in v), 3, True), b1, b2, b3):
        assert torch.isfinite(g).all()


@pytest.mark.parametrize("phi", [0.4, -1.3, 2.8])
def test_torsion_harmonics_are_sines_times_exp_i_m_phi(phi):
    t1, t2 = 1.9, 2.0
    b1, b2, b3 = chain(phi, t1, t2)
    got = A.torsion_harmonics(A.unit(b1), A.unit(b2), A.unit(b3), 3, signed=True)
    s = math.sin(t1) * math.sin(t2)
    expected = [s**m * math.cos(m * phi) for m in (1, 2, 3)] + [
        s**m * math.sin(m * phi) for m in (1, 2, 3)
    ]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    mirror = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=D))
    reflected = A.torsion_harmonics(*(A.unit(b @ mirror) for b in (b1, b2, b3)), 3, signed=True)
    np.testing.assert_allclose(reflected[:3].numpy(), got[:3].numpy(), atol=1e-14)  # Re: even
    np.testing.assert_allclose(reflected[3:].numpy(), -got[3:].numpy(), atol=1e-14)  # Im: odd
    assert A.torsion_harmonics(A.unit(b1), A.unit(b2), A.unit(b3), 3, signed=False).shape == (3,)


def test_safe_atan2_at_origin():
    y = torch.zeros(1, dtype=D, requires_grad=True)
    x = torch.zeros(1, dtype=D, requires_grad=True)
    value = A.safe_atan2(y, x)
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(y.grad).all() and torch.isfinite(x.grad).all()


def test_orders_at_once_match_scipy_with_finite_second_derivatives():
    x = torch.cat([torch.zeros(1, 9, 4), torch.rand(40, 9, 4) * 3, torch.rand(40, 9, 4) * 30]).to(D)
    ref = np.stack([scipy_jn(l, x[:, l].numpy()) for l in range(9)], axis=1)
    np.testing.assert_allclose(A.spherical_jn_orders(x).numpy(), ref, atol=1e-14)
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(A.spherical_jn_orders(leaf).sum(), leaf, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), leaf)
    assert torch.isfinite(g).all() and torch.isfinite(h).all()
    assert (A.spherical_jn_orders(x[:, :, :1] * 0 + 50.0) != 0).all()  # no entry left to the series
    # float32: values to 1e-6 and gradients finite (a Horner series overflows them)
    leaf = x.float().requires_grad_(True)
    values = A.spherical_jn_orders(leaf)
    np.testing.assert_allclose(values.detach().double().numpy(), ref, atol=1e-6)
    (g,) = torch.autograd.grad(values.sum(), leaf)
    assert torch.isfinite(g).all()
