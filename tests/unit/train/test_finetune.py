"""Fine-tuning (train --init): the run starts from exactly the trained potential, frozen
blocks stay put, and other species or another architecture are refused by name."""

import pytest
import torch
import yaml
from train_cases import SAMPLE, tiny_schnet

from geocompose.cli.main import main
from geocompose.train import TrainConfig, Trainer, evaluate, load_checkpoint, load_potential
from geocompose.train.checkpoint import CheckpointError
from geocompose.train.finetune import block_paths

QUIET = {"progress": False, "echo": lambda _: None}
FAST = {"atoms_per_batch": 96, "valid_fraction": 0.2, "lr": 5e-3}


@pytest.fixture(scope="module")
def trained(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained")
    Trainer(tiny_schnet(), sample, TrainConfig(epochs=2, **FAST), out, **QUIET).fit()
    return out / "best.pt"


def test_init_starts_from_the_trained_potential(sample, trained, tmp_path):
    trainer = Trainer(tiny_schnet(), sample, TrainConfig(epochs=1, init=str(trained), **FAST), tmp_path, **QUIET)
    expected = load_potential(trained).state_dict()
    for name, value in trainer.potential.state_dict().items():
        assert torch.equal(value, expected[name]), name
    # Same function: the validation error before any step is the checkpoint's own.
    before, _ = evaluate(trainer.potential.eval(), trainer.valid_batches)
    again, _ = evaluate(load_potential(trained), trainer.valid_batches)
    assert before.compute()["forces_mae"] == pytest.approx(again.compute()["forces_mae"], rel=1e-6)
    assert load_checkpoint(trained)["config"]["init"] == ""


def test_frozen_blocks_keep_their_weights(sample, trained, tmp_path):
    config = TrainConfig(epochs=1, init=str(trained), freeze=["embedding.node", "interactions"], **FAST)
    trainer = Trainer(tiny_schnet(), sample, config, tmp_path, **QUIET)
    assert trainer.frozen == ["embedding.node", "interactions[0]"]
    start = {k: v.clone() for k, v in trainer.potential.state_dict().items()}
    trainer.fit()
    end = load_checkpoint(tmp_path / "last.pt")["weights"]
    changed = {k for k in start if not torch.equal(start[k], end[k])}
    readout = [p for p, _ in block_paths(trainer.potential.model)].index("readout.energy")
    assert changed and all(k.startswith(f"model.blocks.{readout}.") for k in changed), changed
    resumed = Trainer.resume(tmp_path, sample, epochs=2, **QUIET)
    assert resumed.frozen == trainer.frozen and resumed.config.init == str(trained)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda bp: bp["embedding"].update(species=["Cu", "Au", "Ag"]), "it lacks Ag"),
        (lambda bp: bp["embedding"].update(species=["Cu"]), "the blueprint drops Au"),
        (lambda bp: bp["interactions"][0].update(filters=16), "same architecture"),
    ],
)
def test_init_refuses_other_species_or_architecture(sample, trained, tmp_path, change, message):
    blueprint = tiny_schnet()
    change(blueprint)
    with pytest.raises(CheckpointError, match=message):
        Trainer(blueprint, sample, TrainConfig(epochs=1, init=str(trained)), tmp_path, **QUIET)


def test_freeze_names_what_it_can_freeze(sample, tmp_path):
    with pytest.raises(CheckpointError, match=r"--freeze interaction: .*interactions\[0\]"):
        Trainer(tiny_schnet(), sample, TrainConfig(epochs=1, freeze=["interaction"]), tmp_path, **QUIET)


def test_cli_init_and_its_errors(trained, tmp_path, capsys):
    blueprint = tmp_path / "tiny.yaml"
    blueprint.write_text(yaml.safe_dump(tiny_schnet()))
    args = ["train", str(blueprint), str(SAMPLE), "--epochs", "1", "--batch-atoms", "96", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a"), "--init", str(trained), "--freeze", "embedding"]) == 0
    assert "frozen: embedding.node" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "b"), "--init", str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "a"), "--resume", "--init", str(trained)]) == 2
