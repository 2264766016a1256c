"""benchmarks/painn_train_step.py: our side of the step trains (schnetpack's side needs
schnetpack, which the tests do not install)."""

from __future__ import annotations

import pytest
import torch
from benchmark_scripts import loaded


@pytest.fixture(scope="module")
def script():
    with loaded("painn_train_step") as module:
        yield module


def test_our_step_is_a_training_step_on_the_shared_batch(script):
    from mace_train_step import ethanol_batch

    frames = ethanol_batch()
    step, edges = script.ours_step(frames)
    assert edges == 576  # 8 ethanols, every pair within 5 Å
    cells = dict(zip(step.__code__.co_freevars, step.__closure__))
    parameters = cells["parameters"].cell_contents  # what the step clips and updates
    before = [p.detach().clone() for p in parameters]
    step()
    assert any(not torch.equal(a, b) for a, b in zip(before, parameters))  # the optimizer stepped
