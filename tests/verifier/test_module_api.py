"""``verify_module``: any nn.Module with e3nn irreps, checked with ``D_from_matrix``."""

import pytest
import torch
from e3nn import o3

from geocompose.errors import GeocomposeError
from geocompose.types.group import Group
from geocompose.verification import Verdict
from geocompose.verification.module import verify_module


def verdicts(report):
    return {c.name: c.verdict for c in report.checks}


IRREPS = ("2x0e + 1x1o", "1x1o + 1x2e", "2x0e + 2x1o + 1x1e")


def tensor_product(dtype):
    """e3nn computes its Clebsch-Gordan constants in the default dtype at construction."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return o3.FullyConnectedTensorProduct(*IRREPS)
    finally:
        torch.set_default_dtype(before)


def test_an_e3nn_tensor_product_holds_o3():
    report = verify_module(tensor_product(torch.float64))
    assert report.passed, report.text()
    assert set(verdicts(report).values()) == {Verdict.PASS}


def test_float32_constants_cast_to_float64_are_not_exact():
    # Built in float32 and cast, the constants keep float32 digits: ~1e-8, above 1e-9.
    rotation = verify_module(tensor_product(torch.float32)).check("rotation")
    assert rotation.verdict is Verdict.FAIL and 1e-9 < rotation.error < 1e-6


class CrossAsVector(torch.nn.Module):
    """Declares its output 1o, but the cross product of two 1o is a pseudovector 1e."""

    irreps_in = [o3.Irreps("1o"), o3.Irreps("1o")]
    irreps_out = o3.Irreps("1o")

    def forward(self, a, b):
        return torch.cross(a, b, dim=1)


class BatchMean(torch.nn.Module):
    """An equivariant map that subtracts the batch mean (a BatchNorm-like leak)."""

    irreps_in = o3.Irreps("1o")
    irreps_out = o3.Irreps("1o")

    def forward(self, x):
        return x - x.mean(dim=0, keepdim=True)


def test_a_pseudovector_declared_as_a_vector_fails_reflection_only():
    v = verdicts(verify_module(CrossAsVector()))
    assert v == {
        "rotation": Verdict.PASS,
        "reflection": Verdict.FAIL,
        "batch independence": Verdict.PASS,
    }
    # declared honestly, it passes; under an SO(3) claim reflection is only measured
    assert verify_module(CrossAsVector(), irreps_out="1e").passed
    so3 = verdicts(verify_module(CrossAsVector(), claim=Group.SO3))
    assert so3["reflection"] is Verdict.MEASURED


def test_a_batch_leak_is_caught():
    v = verdicts(verify_module(BatchMean()))
    assert v["batch independence"] is Verdict.FAIL and v["rotation"] is Verdict.PASS


def test_undeclared_irreps_are_a_clear_error():
    with pytest.raises(GeocomposeError, match="declares no irreps_in"):
        verify_module(torch.nn.Linear(3, 3))
