"""Any ``nn.Module`` that declares e3nn ``irreps_in``/``irreps_out``, checked e3nn-style.

Random inputs of the declared irreps; every output must move by ``D(R)`` of its
declared irreps when the inputs do (``types.irreps.wigner_d``: e3nn's
``D_from_matrix`` convention, parity included, without its ~1e-7 Euler-angle loss):
a Haar-random rotation, and (for O(3)) a rotation composed with the inversion. Rows
are computed independently, so each sample's output must not depend on the others.
The report has the same shape as a model's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from e3nn import o3

from geocompose.errors import GeocomposeError
from geocompose.types.group import Group
from geocompose.types.irreps import wigner_d
from geocompose.verification import groups, tolerances
from geocompose.verification.report import CheckResult, VerificationReport


def _as_irreps(value) -> o3.Irreps | None:
    return None if value is None else o3.Irreps(value)


def _declared(module, name: str, given):
    value = given if given is not None else getattr(module, name, None)
    if value is None and name == "irreps_in" and hasattr(module, "irreps_in1"):
        value = [module.irreps_in1, module.irreps_in2]  # e3nn's tensor products
    if value is None:
        raise GeocomposeError(
            f"{type(module).__name__} declares no {name}: pass {name}= to verify_module"
        )
    if isinstance(value, Mapping):
        return {k: _as_irreps(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | o3.Irreps):
        return [_as_irreps(v) for v in value]
    return _as_irreps(value)


def _flatten(value) -> list:
    if isinstance(value, Mapping):
        return list(value.values())
    if isinstance(value, list | tuple) and not isinstance(value, o3.Irreps):
        return list(value)
    return [value]


def _act(irreps, x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    if irreps is None:  # an input no group acts on (weights, indices)
        return x
    return x @ wigner_d(irreps, rotation).to(x.dtype).T


def verify_module(
    module: torch.nn.Module,
    *,
    irreps_in=None,
    irreps_out=None,
    claim: Group = Group.O3,
    samples: int = 8,
    seed: int = 0,
) -> VerificationReport:
    """Check that ``module`` is equivariant as its irreps declare (float64).

    Args:
        module: called as ``module(*inputs)`` for a list of input irreps, as
            ``module(**inputs)`` for a dict, or ``module(x)`` for one Irreps.
        irreps_in: overrides ``module.irreps_in`` (Irreps, list, or dict; None entries
            are inputs no group acts on, drawn as Gaussian).
        irreps_out: overrides ``module.irreps_out`` (same structure as the outputs).
        claim: O(3) (rotations and reflections), SO(3) (rotations), none (measured).
        samples: rows of random input.
        seed: seeds inputs and group elements.

    Raises:
        GeocomposeError: the module declares no irreps and none are given.
    """
    irreps_in = _declared(module, "irreps_in", irreps_in)
    irreps_out = _flatten(_declared(module, "irreps_out", irreps_out))
    own = copy.deepcopy(module).to(torch.float64).eval()
    gen = torch.Generator().manual_seed(seed)

    def draw(irreps):
        dim = irreps.dim if irreps is not None else 1
        return torch.randn(samples, dim, generator=gen, dtype=torch.float64)

    def call(inputs):
        if isinstance(inputs, dict):
            return _flatten(own(**inputs))
        if isinstance(inputs, list):
            return _flatten(own(*inputs))
        return _flatten(own(inputs))

    def act(inputs, rotation):
        if isinstance(inputs, dict):
            return {k: _act(irreps_in[k], v, rotation) for k, v in inputs.items()}
        if isinstance(inputs, list):
            return [_act(ir, v, rotation) for ir, v in zip(irreps_in, inputs)]
        return _act(irreps_in, inputs, rotation)

    if isinstance(irreps_in, dict):
        inputs = {k: draw(v) for k, v in irreps_in.items()}
    elif isinstance(irreps_in, list):
        inputs = [draw(v) for v in irreps_in]
    else:
        inputs = draw(irreps_in)
    with torch.no_grad():
        base = call(inputs)
    report = VerificationReport(
        name=type(module).__name__,
        weights=sum(p.numel() for p in own.parameters()),
        claim=claim.value,
        derived=claim.value,
        strategy="declared irreps",
    )
    tol = tolerances.exact_rtol(torch.float64)
    elements = (
        ("rotation", groups.haar_rotation(gen), claim in (Group.O3, Group.SO3)),
        ("reflection", groups.improper_rotation(gen), claim is Group.O3),
    )
    for name, rotation, claimed in elements:
        with torch.no_grad():
            moved = call(act(inputs, rotation))
        expected = [_act(ir, y, rotation) for ir, y in zip(irreps_out, base)]
        error, where = _worst(moved, expected)
        report.checks.append(_row(name, error, where, tol if claimed else None))
    with torch.no_grad():
        alone = [call(_row_of(inputs, i)) for i in range(samples)]
    joined = [torch.cat([a[k] for a in alone]) for k in range(len(base))]
    error, where = _worst(base, joined)
    report.checks.append(_row("batch independence", error, where, tol))
    return report


def _row_of(inputs, i: int):
    if isinstance(inputs, dict):
        return {k: v[i : i + 1] for k, v in inputs.items()}
    if isinstance(inputs, list):
        return [v[i : i + 1] for v in inputs]
    return inputs[i : i + 1]


def _worst(observed, expected) -> tuple[float, str]:
    worst, where = 0.0, ""
    for k, (obs, exp) in enumerate(zip(observed, expected)):
        scale = max(float(exp.abs().max()) if exp.numel() else 0.0, tolerances.SCALE_FLOOR)
        error = float((obs - exp).abs().max()) / scale if exp.numel() else 0.0
        error = error if error == error else float("inf")
        if error >= worst:
            worst, where = error, f"output {k}"
    return worst, where


def _row(name: str, error: float, where: str, tol: float | None) -> CheckResult:
    return CheckResult.judged(name, error, error, where, tol)
