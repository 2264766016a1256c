"""Runs with random draws (stochastic frame averaging, augmentation) are reproducible
bit for bit from their seed, whatever else uses torch's global stream, and a stopped run
resumed equals the uninterrupted one: weights, averaged weights, optimiser, metrics."""

import csv

import pytest
import torch
from train_cases import tiny_stochastic

from geocompose.train import TrainConfig, Trainer, load_checkpoint

QUIET = {"progress": False, "echo": lambda _: None}
STRATEGIES = ["stochastic_frame_averaging", "augmentation"]
TIMING = {"time_s", "structures_per_s"}  # the only columns allowed to differ


def settings(**changes) -> TrainConfig:
    values = {
        "epochs": 3,
        "dtype": "float64",
        "atoms_per_batch": 64,
        "valid_fraction": 0.25,
        "lr": 5e-3,
        **changes,
    }
    return TrainConfig(**values)


def run(blueprint, data, out, global_seed: int, **changes) -> dict:
    """Train with torch's global stream set to ``global_seed`` first (it must not matter)."""
    torch.manual_seed(global_seed)
    Trainer(blueprint, data, settings(**changes), out, **QUIET).fit()
    return load_checkpoint(out / "last.pt")


def rows(out) -> list[dict]:
    with (out / "metrics.csv").open() as handle:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(handle)]


def assert_same_state(a: dict, b: dict) -> None:
    assert a["epoch"] == b["epoch"]
    for name, value in a["weights"].items():
        assert torch.equal(value, b["weights"][name]), name
    for name, value in a["ema"]["shadow"].items():
        assert torch.equal(value, b["ema"]["shadow"][name]), f"ema {name}"
    for key, slot in a["optimizer"]["state"].items():
        for name, value in slot.items():
            assert torch.equal(value, b["optimizer"]["state"][key][name]), f"adam {key}.{name}"
    assert a["metrics"] == b["metrics"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_seed_gives_one_run_whatever_the_global_stream(sample, tmp_path, strategy):
    data = sample.subset(range(8))
    blueprint = tiny_stochastic(strategy)
    first = run(blueprint, data, tmp_path / "a", global_seed=1)
    second = run(blueprint, data, tmp_path / "b", global_seed=2)
    assert_same_state(first, second)
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    # The draws matter: another run seed (same weights' seed is not enough) changes the run.
    other = run(blueprint, data, tmp_path / "c", global_seed=1, seed=1)
    assert any(not torch.equal(v, other["weights"][k]) for k, v in first["weights"].items())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_stopped_run_resumed_equals_the_uninterrupted_one(sample, tmp_path, strategy):
    data = sample.subset(range(8))
    blueprint = tiny_stochastic(strategy)
    straight = run(blueprint, data, tmp_path / "straight", global_seed=0)
    run(blueprint, data, tmp_path / "split", global_seed=0, epochs=1)
    torch.manual_seed(123)  # as if another process, or other work, had used the stream
    resumed = Trainer.resume(tmp_path / "split", data, epochs=3, **QUIET)
    assert resumed.epoch == 1
    resumed.fit()
    assert_same_state(straight, load_checkpoint(tmp_path / "split" / "last.pt"))
    assert rows(tmp_path / "straight") == rows(tmp_path / "split")


def test_the_draws_do_change_with_the_epoch(sample, tmp_path):
    """Reseeding per epoch must not replay one epoch's draws in every epoch: with the
    learning rate at zero the weights stay put, so only the draws change the losses."""
    data = sample.subset(range(4))
    config = settings(epochs=2, lr=1e-30, schedule="constant", ema_decay=0.0, valid_fraction=0.5)
    result = Trainer(tiny_stochastic("augmentation"), data, config, tmp_path, **QUIET).fit()
    first, second = (row["train_loss"] for row in result.history)
    assert first != second


def test_a_kill_between_log_and_checkpoint_repeats_no_row(sample, tmp_path):
    """The state a SIGKILL leaves after epoch 3's row but before its checkpoint (and
    mid-write of a checkpoint): resuming must not repeat the row, and cleans up."""
    data = sample.subset(range(8))
    blueprint = tiny_stochastic("augmentation")
    # Both runs are set for 2 epochs and resumed to 3 (the schedule depends on the total).
    run(blueprint, data, tmp_path / "straight", global_seed=0, epochs=2)
    Trainer.resume(tmp_path / "straight", data, epochs=3, **QUIET).fit()
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    out = tmp_path / "killed"
    run(blueprint, data, out, global_seed=0, epochs=2)
    log = out / "metrics.csv"
    third = (tmp_path / "straight" / "metrics.csv").read_bytes().splitlines(keepends=True)[3]
    log.write_bytes(log.read_bytes() + third + b"4,0.00")  # epoch 3's row, epoch 4's half
    stale = [out / ".last.pt.0123456789ab.tmp", out / ".metrics.csv.0123456789ab.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    lines = []
    Trainer.resume(out, data, epochs=3, progress=False, echo=lines.append).fit()
    assert "removed 2 temporary file(s) a killed run left" in lines[0]
    assert not any(path.exists() for path in stale)
    assert rows(out) == rows(tmp_path / "straight")
    assert_same_state(straight, load_checkpoint(out / "last.pt"))
