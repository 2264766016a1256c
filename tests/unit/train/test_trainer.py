"""The training loop on the shipped sample: the loss falls, resume is exact, early
stopping, divergence, logs and checkpoints."""

import csv
import math

import pytest
import torch
from train_cases import SAMPLE, tiny_schnet

from geocompose.data.dataset import Dataset
from geocompose.errors import StructureError
from geocompose.train import TrainConfig, Trainer, TrainingDiverged, load_checkpoint, load_potential
from geocompose.train.checkpoint import CheckpointError

FAST = {"atoms_per_batch": 96, "valid_fraction": 0.2, "lr": 5e-3}
QUIET = {"progress": False, "echo": lambda _: None}  # no live bar, no printed lines


def test_loss_decreases_on_the_shipped_sample(sample, tmp_path):
    config = TrainConfig(epochs=4, **FAST)
    result = Trainer(tiny_schnet(), sample, config, tmp_path, **QUIET).fit()
    train = [row["train_loss"] for row in result.history]
    valid = [row["valid_loss"] for row in result.history]
    assert train[-1] < 0.5 * train[0], train
    assert min(valid) < valid[0], valid
    assert result.valid["forces_mae"] < 1.0  # eV/Å; the data's force RMS is ~0.75
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert {
        "lr",
        "train_loss",
        "valid_loss",
        "valid_forces_mae",
        "valid_energy_per_atom_mae",
        "structures_per_s",
    } <= set(rows[0])
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == result.best_epoch and best["species"] == ["Cu", "Au"]
    assert best["blueprint"]["name"] == "tiny_schnet"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_resume_takes_exactly_the_steps_of_an_uninterrupted_run(sample, tmp_path):
    config = TrainConfig(epochs=2, dtype="float64", **FAST)
    data = sample.subset(range(12))
    Trainer(tiny_schnet(), data, config, tmp_path / "straight", **QUIET).fit()
    Trainer(
        tiny_schnet(),
        data,
        TrainConfig(epochs=1, dtype="float64", **FAST),
        tmp_path / "split",
        **QUIET,
    ).fit()
    resumed = Trainer.resume(tmp_path / "split", data, epochs=2, **QUIET)
    assert resumed.epoch == 1
    resumed.fit()
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "split" / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for name, value in a["weights"].items():
        assert torch.equal(value, b["weights"][name]), name
    for name, value in a["ema"]["shadow"].items():
        assert torch.equal(value, b["ema"]["shadow"][name]), name
    with (tmp_path / "split" / "metrics.csv").open() as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [1, 2]


def test_resume_refuses_other_data(sample, tmp_path):
    data = sample.subset(range(10))
    Trainer(tiny_schnet(), data, TrainConfig(epochs=1, **FAST), tmp_path, **QUIET).fit()
    with pytest.raises(CheckpointError, match="trained on 10 structures"):
        Trainer.resume(tmp_path, sample.subset(range(9)))
    # As many structures, but not the same ones: the stored splits would point elsewhere.
    with pytest.raises(CheckpointError, match="other structures"):
        Trainer.resume(tmp_path, sample.subset(range(1, 11)))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Trainer.resume(tmp_path / "nowhere", sample)


def test_early_stopping_when_validation_stops_improving(sample, tmp_path):
    lines = []
    config = TrainConfig(epochs=30, patience=1, schedule="constant", **{**FAST, "lr": 1e-12})
    result = Trainer(
        tiny_schnet(), sample.subset(range(12)), config, tmp_path, progress=False, echo=lines.append
    ).fit()
    assert result.stopped_early and result.epochs < 30
    assert result.epochs - result.best_epoch == 1
    assert any("stopped early" in line for line in lines)


def test_divergence_is_reported(sample, tmp_path):
    config = TrainConfig(epochs=3, clip=0, ema_decay=0, **{**FAST, "lr": 1e12})
    with pytest.raises(TrainingDiverged, match="lower --lr"):
        Trainer(
            tiny_schnet(),
            sample.subset(range(12)),
            config,
            tmp_path,
            **QUIET,
        ).fit()


def test_setup_refuses_what_cannot_be_trained(sample, tmp_path):
    with pytest.raises(StructureError, match="no 'forces' output"):
        Trainer(tiny_schnet("none"), sample, TrainConfig(), tmp_path)
    blueprint = tiny_schnet()
    blueprint["embedding"]["species"] = ["Au"]
    with pytest.raises(StructureError, match="structure 0 contains Cu"):
        Trainer(blueprint, sample, TrainConfig(), tmp_path)
    no_forces = Dataset(
        [r.__class__(r.positions, r.numbers, r.cell, r.pbc, r.energy) for r in sample.records[:5]]
    )
    with pytest.raises(StructureError, match="structure 0 has no forces"):
        Trainer(tiny_schnet(), no_forces, TrainConfig(), tmp_path)
    energy_only = Trainer(
        tiny_schnet("none"), no_forces, TrainConfig(forces_weight=0, valid_fraction=0.2), tmp_path
    )
    assert energy_only.splits.valid


def test_stress_loss_and_the_best_potential_loads(sample, tmp_path):
    config = TrainConfig(epochs=1, stress_weight=10.0, **FAST)
    result = Trainer(
        tiny_schnet(),
        sample.subset(range(6)),
        config,
        tmp_path,
        **QUIET,
    ).fit()
    assert "train_stress" in result.history[0] and math.isfinite(result.history[0]["train_stress"])
    potential = load_potential(result.best)
    assert not potential.training
    batch = sample.collate([0, 1])
    out = potential(batch, stress=True)
    assert out["stress"].shape == (2, 3, 3)
    raw = load_potential(result.best, averaged=False)
    assert any(not torch.equal(p, q) for p, q in zip(potential.parameters(), raw.parameters()))


def test_bf16_autocast_is_opt_in_and_trains(sample, tmp_path):
    data = sample.subset(range(12))
    runs = {}
    for mode in ("off", "bf16"):
        config = TrainConfig(epochs=1, autocast=mode, ema_decay=0, **FAST)
        result = Trainer(tiny_schnet(), data, config, tmp_path / mode, **QUIET).fit()
        runs[mode] = result.history[0]["train_loss"]
        assert math.isfinite(runs[mode])
    # Same seed, same batches: only the rounding of the training steps differs, and it must
    # show (a no-op autocast would give the float32 loss to the last digit).
    assert runs["bf16"] != runs["off"]
    assert abs(runs["bf16"] - runs["off"]) < 0.1 * runs["off"]
    with pytest.raises(StructureError, match="autocast must be"):
        Trainer(tiny_schnet(), data, TrainConfig(autocast="fp8"), tmp_path / "bad")


def test_edge_cap_splits_batches_by_the_models_own_edge_count(sample, tmp_path):
    data = sample.subset(range(8))
    plain = Trainer(tiny_schnet(), data, TrainConfig(atoms_per_batch=128), tmp_path, **QUIET)
    edges = [
        plain.potential.model.graph.topology(b)["edge_index"].shape[1] for b in plain.train_batches
    ]
    per_structure = max(edges) // max(b.num_structures for b in plain.train_batches)
    capped = Trainer(
        tiny_schnet(),
        data,
        TrainConfig(atoms_per_batch=128, edges_per_batch=2 * per_structure + 1),
        tmp_path,
        **QUIET,
    )
    assert max(b.num_structures for b in plain.train_batches) == 4  # 128 atoms
    assert max(b.num_structures for b in capped.train_batches) <= 2  # the edge cap binds
    for b in capped.train_batches:
        assert (
            capped.potential.model.graph.topology(b)["edge_index"].shape[1] <= 2 * per_structure + 1
        )


def test_molecules_from_the_shipped_xtb_sample_train(tmp_path):
    # GFN2-xTB ethanol (scripts/generate_xtb_molecule.py --small): non-periodic, 3 elements.
    data = Dataset.from_file(SAMPLE.with_name("ethanol_xtb_small.extxyz"), index=":30")
    assert len(data) == 30 and not any(r.pbc.any() for r in data.records)
    blueprint = tiny_schnet()
    blueprint["embedding"]["species"] = ["H", "C", "O"]
    config = TrainConfig(epochs=3, atoms_per_batch=36, valid_fraction=0.2, lr=5e-3)
    result = Trainer(blueprint, data, config, tmp_path, **QUIET).fit()
    losses = [row["train_loss"] for row in result.history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], losses
    assert load_checkpoint(tmp_path / "best.pt")["species"] == ["H", "C", "O"]
