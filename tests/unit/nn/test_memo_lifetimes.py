"""Memo lifetimes in a model call: topology per batch, geometry per run (per frame).

The geometry memos (triplet harmonics, spherical radial basis, quadruplet basis) carry
their run's autograd graph; these tests show they are rebuilt for every run, that a
planted batch-lifetime geometry memo is caught, and that topology memos (triplets,
quadruplets) are shared across calls on one batch but never across batches or graphs.
"""

from __future__ import annotations

import ase.build
import numpy as np
import pytest
import torch

import geocompose
from geocompose.data import structures as S
from geocompose.data.cache import RunCaches
from geocompose.nn.graph import higher_order as H
from geocompose.nn.interaction import gemnet
from geocompose.types import fields as F

SPECIES = ["H", "C", "O", "Cu"]


def blueprint(block: str = "dimenet_pp", strategy: str = "built_in", cutoff: float = 4.0):
    extra = {"int_emb": 4, "out_emb": 8} if block == "dimenet_pp" else {"int_emb": 4}
    if block == "gemnet_q_unsigned":
        extra["torsion_cutoff"] = 3.0
    return {
        "name": "m",
        "symmetry": {"group": "O(3)", "strategy": strategy},
        "graph": {"type": "radius", "cutoff": cutoff},
        "embedding": {
            "species": SPECIES,
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "bessel", "num": 5},
        },
        "interactions": [{"type": block, "hidden": 8, "repeat": 2, **extra}],
        "readout": {"energy": {"type": "sum", "hidden": []}, "forces": {"type": "gradient"}},
    }


def sample_batch(seed: int = 0) -> geocompose.Batch:
    rng = np.random.default_rng(seed)
    cu = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True)
    cu.rattle(0.05, seed=seed + 2)
    return geocompose.Batch.from_ase([S.random_molecule(rng, ["H", "C", "O"], 4.0), cu])


def count_calls(monkeypatch, owner, name: str) -> list:
    calls, original = [], getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.mark.parametrize("strategy", ["built_in", "frame_averaging"])
def test_geometry_memos_are_built_once_per_run_and_topology_once_per_batch(
    monkeypatch, strategy
):
    model = geocompose.compile(
        blueprint("gemnet_q_unsigned", strategy), dtype=torch.float64, seed=0
    )
    runs = []
    run = model._run_inner
    model._run_inner = lambda state: runs.append(1) or run(state)
    harmonics = count_calls(monkeypatch, H.TripletLayout, "harmonics")
    triplets = count_calls(monkeypatch, H, "triplet_index")
    quadruplets = count_calls(monkeypatch, gemnet, "quadruplet_index")
    batch = sample_batch()
    model(batch)
    model(batch)
    assert len(runs) == (2 if strategy == "built_in" else 2 * 8)  # 8 frames of O(3)
    # Two layers read the harmonics in every run: built once per run, never reused.
    assert len(harmonics) == len(runs)
    assert len(triplets) == 1 and len(quadruplets) == 1  # once for the batch, all runs


@pytest.mark.parametrize("block", ["dimenet_pp", "gemnet_t"])
def test_two_calls_on_one_batch_give_the_same_forces(block):
    model = geocompose.compile(blueprint(block), dtype=torch.float64, seed=0)
    batch = sample_batch()
    first, second = model(batch), model(batch)
    for name in ("energy", "forces"):
        assert torch.equal(first[name], second[name])


@pytest.mark.parametrize("block", ["dimenet_pp", "gemnet_t"])
def test_a_planted_batch_lifetime_geometry_memo_gives_wrong_forces(monkeypatch, block):
    """The defect the per-run cache exists to prevent: geometry memos kept on the batch
    tie the second call to the first call's autograd graph, not the graph of the
    second call's positions."""
    monkeypatch.setattr(
        RunCaches, "per_run", lambda self, key, compute: self.batch.cached(key, compute)
    )
    model = geocompose.compile(blueprint(block), dtype=torch.float64, seed=0)
    batch = sample_batch()
    first, second = model(batch)["forces"], model(batch)["forces"]
    # The second call's forces miss every term through the first call's memos (measured
    # 1.2e-3 of the largest force for dimenet_pp, 1.0e-2 for gemnet_t); correct: equal.
    assert (first - second).abs().max() > 1e-6 * first.abs().max()


def test_topology_memos_are_never_shared_between_batches_or_graphs(monkeypatch):
    near = geocompose.compile(blueprint(cutoff=3.0), dtype=torch.float64, seed=0)
    far = geocompose.compile(blueprint(cutoff=4.0), dtype=torch.float64, seed=0)
    triplets = count_calls(monkeypatch, H, "triplet_index")
    batch, other = sample_batch(0), sample_batch(1)
    alone = {model: model(batch.replace())["energy"] for model in (near, far)}
    assert len(triplets) == 2
    # One batch, two graphs: each graph's triplets, each model its own result.
    for model in (near, far, near, far):
        assert torch.equal(model(batch)["energy"], alone[model])
    assert len(triplets) == 4
    # Another batch builds its own triplets, whatever the first batch cached.
    near(other)
    assert len(triplets) == 5


def test_a_state_paired_with_another_batchs_caches_is_refused():
    model = geocompose.compile(blueprint(), dtype=torch.float64, seed=0)
    batch, other = sample_batch(0), sample_batch(1)
    model(other)  # other's cache now holds triplets of other's edge set
    state = {**model.input_state(batch), F.CACHES: other.run_caches(model.graph.cache_key)}
    with pytest.raises(RuntimeError, match="another edge set"):
        model.strategy(model._run_inner, state, model.outputs, model.graph)


def test_a_state_without_a_batch_runs_with_caches_of_its_own():
    """An exported program hands the pipeline raw tensors: it memoises for the call."""
    model = geocompose.compile(blueprint("gemnet_t"), dtype=torch.float64, seed=0)
    batch = sample_batch()
    state = model.input_state(batch.replace())
    del state[F.CACHES]  # raw tensors only, as an exported program gets them
    out = model.strategy(model._run_inner, state, model.outputs, model.graph)
    torch.testing.assert_close(out["energy"], model(batch)["energy"], rtol=1e-12, atol=0)
