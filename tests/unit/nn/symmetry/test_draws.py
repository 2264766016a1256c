"""The stochastic strategies draw from the generator handed to them, never from torch's
global stream: the same generator state gives the same draws, another one other draws."""

import pytest
import torch
from ase.build import bulk

import geocompose
from geocompose.nn.symmetry.draws import RandomDraws, use_generator

MLP = {
    "name": "draws",
    "graph": {"type": "radius", "cutoff": 3.0},
    "embedding": {
        "species": ["Cu"],
        "node": {"type": "learned", "features": 4},
        "radial": {"type": "gaussian", "num": 4},
        "envelope": {"type": "cosine"},
    },
    "interactions": [{"type": "coordinate_mlp", "hidden": 4}],
    "readout": {"energy": {"type": "sum"}},
}


def energies(model, batch, count=6) -> list[float]:
    return [float(model(batch)["energy"].detach().sum()) for _ in range(count)]


@pytest.mark.parametrize("strategy", ["stochastic_frame_averaging", "augmentation"])
def test_draws_follow_the_generator_alone(strategy):
    blueprint = {**MLP, "symmetry": {"group": "O(3)", "strategy": strategy}}
    model = geocompose.compile(blueprint, dtype=torch.float64, seed=0).train()
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    cell.rattle(0.1, seed=1)
    batch = geocompose.Batch.from_ase([cell, cell.copy()])
    assert use_generator(model, torch.Generator().manual_seed(5)) == 1
    torch.manual_seed(0)
    first = energies(model, batch)
    assert use_generator(model, torch.Generator().manual_seed(5)) == 1
    torch.manual_seed(1)  # another global stream: no effect
    assert energies(model, batch) == first
    use_generator(model, torch.Generator().manual_seed(6))
    assert energies(model, batch) != first
    assert len(set(first)) > 1  # each call draws anew


def test_a_strategy_without_a_generator_makes_its_own_seeded_one():
    class Drawing(RandomDraws):
        pass

    a, b = Drawing(), Drawing()
    assert torch.equal(torch.rand(4, generator=a.draws()), torch.rand(4, generator=b.draws()))
    assert a.draws() is a.draws()  # made once, then kept: successive calls draw anew
