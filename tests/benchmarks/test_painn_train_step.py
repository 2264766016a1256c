"""benchmarks/painn_train_step.py: our side of the step trains (schnetpack's side needs
schnetpack, which the tests do not install)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def script():
    saved = list(sys.path)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(
            "painn_train_step", BENCHMARKS / "painn_train_step.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path[:] = saved


def test_our_step_is_a_training_step_on_the_shared_batch(script):
    from mace_train_step import ethanol_batch

    frames = ethanol_batch()
    step, edges = script.ours_step(frames)
    assert edges == 576  # 8 ethanols, every pair within 5 Å
    closure = step.__closure__
    objective = next(c.cell_contents for c in closure if hasattr(c.cell_contents, "potential"))
    before = [p.detach().clone() for p in objective.parameters()]
    step()
    after = list(objective.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))  # the optimizer stepped
