"""When the forces readout keeps the autograd graph, and that freeing it changes nothing."""

import ase.build
import numpy as np
import pytest
import torch

import geocompose

BLUEPRINT = {
    "name": "tiny_schnet",
    "symmetry": {"group": "O(3)", "strategy": "built_in"},
    "graph": {"type": "radius", "cutoff": 3.0},
    "embedding": {
        "species": ["H", "C", "O"],
        "node": {"type": "learned", "features": 8},
        "radial": {"type": "gaussian", "num": 6},
        "envelope": {"type": "cosine"},
    },
    "interactions": [{"type": "schnet", "filters": 8, "repeat": 2}],
    "readout": {
        "energy": {"type": "sum", "hidden": [4], "activation": "ssp"},
        "forces": {"type": "gradient", "of": "energy"},
    },
}


@pytest.fixture(scope="module")
def model():
    return geocompose.compile(BLUEPRINT, dtype=torch.float64, seed=0).eval()


@pytest.fixture()
def batch():
    atoms = ase.build.molecule("CH3CH2OH")
    atoms.positions += np.random.default_rng(0).normal(scale=0.05, size=atoms.positions.shape)
    return geocompose.Batch.from_ase([atoms], dtype=torch.float64)


def test_eval_call_frees_the_graph_and_returns_plain_tensors(model, batch):
    out = model(batch)
    assert not out["energy"].requires_grad and not out["forces"].requires_grad
    # Same numbers as when the graph is kept for the caller.
    kept = model(batch.replace(positions=batch.positions.clone().requires_grad_(True)))
    torch.testing.assert_close(out["energy"], kept["energy"].detach(), rtol=0, atol=0)
    torch.testing.assert_close(out["forces"], kept["forces"].detach(), rtol=0, atol=0)


def test_caller_positions_requiring_grad_keep_outputs_differentiable(model, batch):
    positions = batch.positions.clone().requires_grad_(True)
    out = model(batch.replace(positions=positions))
    (grad,) = torch.autograd.grad(out["energy"].sum(), positions)  # would fail on a freed graph
    torch.testing.assert_close(-grad, out["forces"])


def test_training_keeps_the_graph_for_a_forces_loss(model, batch):
    model.train()
    try:
        out = model(batch)
        loss = out["energy"].sum() + out["forces"].pow(2).sum()
        loss.backward()  # through energy and through the forces' own graph
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    finally:
        model.zero_grad()
        model.eval()
