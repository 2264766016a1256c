"""Checkpoints: atomic writes, weights_only loading, every shipped blueprint round-trips."""

from pathlib import Path

import pytest
import torch
from ase.build import bulk
from train_cases import tiny_painn, tiny_schnet

import geocompose
from geocompose.data.batch import Batch
from geocompose.train import (
    CheckpointError,
    Potential,
    load_checkpoint,
    load_potential,
    save_checkpoint,
)
from geocompose.train.checkpoint import build_potential

BLUEPRINTS = sorted((Path(__file__).parents[3] / "blueprints").glob("*.yaml"))


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot be pickled")


class Payload:
    def __reduce__(self):  # what an unsafe load would execute
        return (print, ("unpickled!",))


def test_arbitrary_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "geocompose.checkpoint/1", "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(path)
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a geocompose.checkpoint/1"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "text.pt")


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = save_checkpoint({"value": torch.ones(2)}, tmp_path / "last.pt")
    with pytest.raises(RuntimeError, match="cannot be pickled"):
        save_checkpoint({"value": torch.zeros(3), "late": Unpicklable()}, path)  # fails mid-write
    assert torch.equal(load_checkpoint(path)["value"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def _state(blueprint, dtype="float64"):
    model = geocompose.compile(blueprint, dtype=getattr(torch, dtype), seed=3)
    if "energy" not in model.outputs:
        pytest.skip("no energy output")
    potential = Potential(model, torch.arange(len(model.species), dtype=model.dtype), scale=0.5)
    dump = geocompose.load(blueprint).blueprint.model_dump(mode="json")
    return potential.eval(), {
        "blueprint": dump,
        "species": list(model.species),
        "dtype": dtype,
        "weights": potential.state_dict(),
        "ema": None,
    }


def _round_trip(blueprint, tmp_path):
    potential, state = _state(blueprint)
    save_checkpoint(state, tmp_path / "c.pt")
    loaded = load_potential(tmp_path / "c.pt")
    crystal = bulk(potential.species[-1], "sc", a=2.7).repeat((2, 2, 1))
    crystal.rattle(0.05, seed=0)
    crystal.pbc = False  # a cluster: every graph builder takes it
    batch = Batch.from_ase(crystal)
    torch.manual_seed(0)
    expected = potential(batch)
    torch.manual_seed(0)  # stochastic symmetry strategies draw the same frames
    got = loaded(batch)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name])


@pytest.mark.parametrize(
    "blueprint", [tiny_schnet(), tiny_painn("direct_forces")], ids=["schnet", "painn"]
)
def test_a_checkpoint_rebuilds_the_same_potential(blueprint, tmp_path):
    _round_trip(blueprint, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("path", BLUEPRINTS, ids=lambda p: p.stem)
def test_every_shipped_blueprint_round_trips_through_a_checkpoint(path, tmp_path):
    _round_trip(path, tmp_path)


def test_averaged_weights_are_used_by_default(tmp_path):
    potential, state = _state(tiny_schnet())
    shadow = {k: torch.zeros_like(v) for k, v in potential.named_parameters()}
    state["ema"] = {"decay": 0.9, "steps": 1, "shadow": shadow}
    averaged = build_potential(state)
    assert all(float(p.detach().abs().sum()) == 0 for p in averaged.parameters())
    raw = build_potential(state, averaged=False)
    assert any(float(p.detach().abs().sum()) > 0 for p in raw.parameters())
