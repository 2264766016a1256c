"""The Cartesian ⇄ irreps conversion, against e3nn's own rotation matrices."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3
from hypothesis import given, settings
from hypothesis import strategies as st

from geocompose.data.rotations import haar_rotations
from geocompose.nn.ops.cartesian import (
    CartesianLayout,
    VectorLinear,
    cartesian_input,
    cartesian_irreps,
    from_cartesian,
    safe_unit,
    to_cartesian,
    vector_norm,
)
from geocompose.types import FieldType, Level, TypeRefusal

# e3nn's D_from_matrix goes through Euler angles and is accurate to ~1e-7 even in
# float64, so comparisons *against e3nn's matrices* use this tolerance; everything
# that only uses R itself is compared in exact float64.
E3NN_ATOL = 1e-6


def rotation(seed: int, improper: bool = False) -> torch.Tensor:
    """A Haar-random float64 rotation, optionally times the inversion."""
    q = haar_rotations(1, torch.Generator().manual_seed(seed))[0]
    return -q if improper else q


def test_e3nn_l1_basis_is_cartesian():
    # D(R) == R for 1o (including improper R): no (y, z, x) reordering to undo.
    for seed, improper in [(0, False), (1, True), (2, False)]:
        R = rotation(seed, improper)
        assert torch.allclose(o3.Irreps("1o").D_from_matrix(R), R, atol=E3NN_ATOL)
    # and the l=1 spherical harmonics of a vector are proportional to (x, y, z)
    v = torch.tensor([[0.3, -1.2, 0.7]], dtype=torch.float64)
    sh = o3.spherical_harmonics(1, v, normalize=False, normalization="component")
    assert torch.allclose(sh, 3**0.5 * v)


@settings(max_examples=25, deadline=None)
@given(
    blocks=st.lists(
        st.tuples(st.integers(1, 4), st.sampled_from(["0e", "1o"])), min_size=1, max_size=4
    ),
    seed=st.integers(0, 2**16),
    improper=st.booleans(),
)
def test_split_commutes_with_e3nn_rotation(blocks, seed, improper):
    """For any (unsimplified) 0e/1o irreps: split(D(R) x) == (s, v @ R.T)."""
    irreps = o3.Irreps([(mul, o3.Irrep(ir)) for mul, ir in blocks])
    layout = CartesianLayout.of(irreps)
    x = torch.randn(
        5, irreps.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )
    R = rotation(seed, improper)
    s, v = layout.split(x)
    assert s.shape == (5, layout.num_scalars) and v.shape == (5, layout.num_vectors, 3)
    s_rot, v_rot = layout.split(x @ irreps.D_from_matrix(R).T)
    assert torch.allclose(s_rot, s, atol=E3NN_ATOL)
    assert torch.allclose(v_rot, v @ R.T, atol=E3NN_ATOL)


def test_channel_major_layout_and_round_trip():
    # 2x0e + 2x1o: [s0, s1, v0x, v0y, v0z, v1x, v1y, v1z]
    x = torch.arange(8, dtype=torch.float64).unsqueeze(0)
    s, v = to_cartesian(x, o3.Irreps("2x0e + 2x1o"))
    assert s.tolist() == [[0.0, 1.0]]
    assert v.tolist() == [[[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]]]
    assert torch.equal(from_cartesian(s, v), x)


def test_unsorted_irreps_split_by_kind():
    irreps = o3.Irreps("1x1o + 2x0e + 1x1o + 1x0e")
    x = torch.arange(irreps.dim, dtype=torch.float64).unsqueeze(0)
    s, v = to_cartesian(x, irreps)
    assert s.tolist() == [[3.0, 4.0, 8.0]]
    assert v.tolist() == [[[0.0, 1.0, 2.0], [5.0, 6.0, 7.0]]]
    with pytest.raises(ValueError, match="canonical"):
        CartesianLayout.of(irreps).join(s, v)


def test_scalars_only_and_vectors_only():
    s, v = to_cartesian(torch.ones(3, 4), o3.Irreps("4x0e"))
    assert s.shape == (3, 4) and v.shape == (3, 0, 3)
    assert from_cartesian(s, v).shape == (3, 4)
    s, v = to_cartesian(torch.ones(0, 6), o3.Irreps("2x1o"))  # an empty batch
    assert s.shape == (0, 0) and v.shape == (0, 2, 3)
    assert cartesian_irreps(4, 0) == o3.Irreps("4x0e")
    assert cartesian_irreps(2, 3) == o3.Irreps("2x0e + 3x1o")


def test_other_irreps_are_refused_by_type():
    for irreps in ("4x0e + 2x1e", "4x0e + 1x2e", "3x0o"):
        refusal = cartesian_input(FieldType(o3.Irreps(irreps), Level.NODE), "painn")
        assert isinstance(refusal, TypeRefusal) and irreps.split(" + ")[-1][-2:] in refusal.message
    refusal = cartesian_input(FieldType(o3.Irreps("2x1o"), Level.NODE), "painn")
    assert isinstance(refusal, TypeRefusal) and "0e" in refusal.message
    layout = cartesian_input(FieldType(o3.Irreps("4x0e + 2x1o"), Level.NODE), "painn")
    assert isinstance(layout, CartesianLayout) and (layout.num_scalars, layout.num_vectors) == (
        4,
        2,
    )


def test_norm_and_unit_are_finite_with_gradients_at_zero():
    v = torch.zeros(2, 3, 3, dtype=torch.float64, requires_grad=True)
    norm = vector_norm(v)
    (grad,) = torch.autograd.grad(norm.sum(), v, create_graph=True)
    assert torch.isfinite(norm).all() and torch.equal(grad, torch.zeros_like(v))
    (second,) = torch.autograd.grad(grad.sum(), v)
    assert torch.isfinite(second).all()

    # Smooth, not a 1e-4-wide cusp: the Hessian at zero is the identity (n ~ |v|^2 / 2),
    # and far from zero n(v) = sqrt(|v|^2 + 1) - 1.
    hessian = torch.autograd.functional.hessian(
        lambda u: vector_norm(u), torch.zeros(3, dtype=torch.float64)
    )
    assert torch.allclose(hessian, torch.eye(3, dtype=torch.float64))
    far = torch.tensor([3.0, 0.0, 4.0], dtype=torch.float64)
    assert torch.isclose(vector_norm(far), torch.tensor(26.0, dtype=torch.float64).sqrt() - 1)

    vectors = torch.tensor(
        [[0.0, 0.0, 0.0], [3.0, 0.0, 4.0]], dtype=torch.float64, requires_grad=True
    )
    lengths = vectors.norm(dim=-1, keepdim=True)
    unit = safe_unit(vectors, lengths.detach())
    assert unit.tolist() == [[0.0, 0.0, 0.0], [0.6, 0.0, 0.8]]
    (grad,) = torch.autograd.grad(unit.sum(), vectors)
    assert torch.isfinite(grad).all()


def test_vector_linear_commutes_with_rotations():
    torch.manual_seed(0)
    lin = VectorLinear(4, 3).double()
    v = torch.randn(6, 4, 3, dtype=torch.float64)
    for seed, improper in [(3, False), (4, True)]:
        R = rotation(seed, improper)
        assert torch.allclose(lin(v @ R.T), lin(v) @ R.T, atol=1e-13)
    assert lin(v).shape == (6, 3, 3)
