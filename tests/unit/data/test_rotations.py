"""The one Haar sampler: orthogonal, the requested determinant, Haar moments, seeded."""

from __future__ import annotations

import pytest
import torch

from geocompose.data.rotations import haar_rotations
from geocompose.verification import groups


@pytest.mark.parametrize("proper", [True, False])
def test_samples_are_orthogonal_with_the_requested_determinant(proper):
    q = haar_rotations(2000, torch.Generator().manual_seed(0), proper=proper)
    eye = torch.eye(3, dtype=torch.float64).expand(2000, 3, 3)
    assert (q @ q.transpose(1, 2) - eye).abs().max() < 1e-13
    det = torch.det(q)
    assert (det.abs() - 1).abs().max() < 1e-13
    if proper:
        assert (det > 0).all()
    else:  # both components of O(3), about half each
        assert 0.45 < float((det < 0).double().mean()) < 0.55


def test_haar_moments():
    """Under Haar measure E[R] = 0 and E[R_ij^2] = 1/3: a sampler biased towards the
    identity (or any axis) fails these at 20,000 samples (standard error ~0.004)."""
    q = haar_rotations(20_000, torch.Generator().manual_seed(1))
    assert q.mean(0).abs().max() < 0.02
    assert (q.pow(2).mean(0) - 1 / 3).abs().max() < 0.02
    # the trace of a Haar rotation has mean 0 and E[tr^2] = 1; the identity has 3
    trace = q.diagonal(dim1=-2, dim2=-1).sum(-1)
    assert abs(float(trace.mean())) < 0.03 and abs(float(trace.pow(2).mean()) - 1) < 0.05


def test_seeded_and_shared_by_the_verifier():
    a = haar_rotations(3, torch.Generator().manual_seed(7))
    b = haar_rotations(3, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    r = groups.haar_rotation(torch.Generator().manual_seed(7))
    assert torch.equal(r, haar_rotations(1, torch.Generator().manual_seed(7))[0])
    f32 = haar_rotations(2, torch.Generator().manual_seed(7), dtype=torch.float32)
    assert f32.dtype == torch.float32 and f32.shape == (2, 3, 3)
