"""Per-edge bases are computed once per model call, however many layers read them.

A forward hook counts the calls of every module that computes a per-edge basis (the
graph builder's edge vectors, radial bases, envelopes, spherical harmonics, DimeNet's
spherical Bessel basis) during one forward+forces call of each shipped blueprint with
several interaction layers, plainly and with the interaction blocks checkpointed
(whose backward pass runs each block again); a planted defect (no per-run memo) must
make it fail.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import ase.build
import pytest
import torch

import geocompose
from geocompose.nn.embedding.angular_basis import SphericalBesselRadial
from geocompose.nn.embedding.base import LengthFunction
from geocompose.nn.embedding.harmonics import SphericalHarmonics
from geocompose.nn.graph.base import GraphBuilder

BLUEPRINTS = Path(__file__).parents[3] / "blueprints"
BASES = (GraphBuilder, LengthFunction, SphericalHarmonics, SphericalBesselRadial)


def basis_calls(name: str, checkpointing: str = "never") -> Counter[str]:
    """Calls of each kind of basis module during one forward+forces call of blueprint ``name``."""
    model = geocompose.compile(BLUEPRINTS / f"{name}.yaml", dtype=torch.float64, seed=0)
    if checkpointing != "never":
        model.eval().checkpointing = checkpointing  # an inference mode
    calls: Counter[str] = Counter()
    for module in model.modules():
        if isinstance(module, BASES):  # counted per kind: each layer may own a copy
            module.register_forward_hook(lambda m, i, o: calls.update([type(m).__name__]))
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.rattle(0.05, seed=0)
    batch = geocompose.Batch.from_ase(atoms)
    out = model(batch)
    assert torch.isfinite(out["forces"]).all()
    return calls


@pytest.mark.parametrize("checkpointing", ["never", "always"])
@pytest.mark.parametrize("name", ["schnet", "painn", "mace", "dimenet_pp"])
def test_each_edge_basis_is_computed_once_per_call(name, checkpointing):
    calls = basis_calls(name, checkpointing)
    assert calls, f"{name}: no basis module found: the test would prove nothing"
    assert set(calls.values()) == {1}, f"{name}: bases computed more than once: {dict(calls)}"


def test_the_count_sees_a_basis_recomputed_per_layer(monkeypatch):
    # Planted defect: the per-run memo recomputes every time, so each of DimeNet++'s
    # four layers computes its spherical Bessel basis again.
    from geocompose.data.cache import RunCaches

    monkeypatch.setattr(RunCaches, "per_run", lambda self, key, compute: compute())
    calls = basis_calls("dimenet_pp")
    assert max(calls.values()) == 4, dict(calls)
