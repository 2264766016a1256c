"""``geocompose train --resume`` refuses settings other than its checkpoint's (exit 2,
naming the option) unless ``--override``, which prints and records them; and the other
faults of issue 17: honest batch and no-validation messages, the checkpoint's file mode,
one-line errors for an unusable device, weights of other shapes and a NaN energy."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.io import read, write
from train_cli_cases import TINY, write_inputs

from geocompose.cli.main import main
from geocompose.train import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_inputs(tmp_path_factory.mktemp("resume"), 8)


@pytest.fixture(scope="module")
def trained(files, tmp_path_factory):
    """A one-epoch run (copied per test that changes it)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", *args(files, out), "--epochs", "1"]) == 0
    return out


def args(files: Path, out: Path, blueprint: str = "tiny.yaml") -> list[str]:
    return [
        str(files / blueprint),
        str(files / "cu.extxyz"),
        "--out",
        str(out),
        "--batch-atoms",
        "64",
        "--valid-fraction",
        "0.25",
        "--no-progress",
    ]


def copy_run(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--lr", "0.01"], "--lr 0.01 (the checkpoint's: 0.001)"),
        (["--batch-atoms", "32"], "--batch-atoms 32 (the checkpoint's: 64)"),
        (["--forces-weight", "1"], "--forces-weight 1.0 (the checkpoint's: 10.0)"),
        (["--ema-decay", "0.5", "--seed", "3"], "--ema-decay 0.5"),
    ],
)
def test_resume_refuses_other_options(files, trained, tmp_path, capsys, extra, named):
    out = copy_run(trained, tmp_path / "run")
    before = (out / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", *args(files, out), "--epochs", "2", "--resume", *extra]) == 2
    err = capsys.readouterr().err
    assert named in err and "--override" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert (out / "last.pt").read_bytes() == before  # nothing trained, nothing written


def test_resume_refuses_an_edited_blueprint_of_the_same_name(files, trained, tmp_path, capsys):
    (files / "edited.yaml").write_text(TINY.replace("cutoff: 4.0", "cutoff: 4.5"))
    out = copy_run(trained, tmp_path / "run")
    capsys.readouterr()
    argv = ["train", *args(files, out, "edited.yaml"), "--epochs", "2", "--resume"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "edited.yaml differs at graph.cutoff (4.0 in the checkpoint, now 4.5)" in err
    # With --override it continues on the edited blueprint, printing and recording it.
    assert main([*argv, "--override"]) == 0
    printed = capsys.readouterr().out
    assert "--override: blueprint.graph.cutoff: 4.0 -> 4.5" in printed
    entry = json.loads((out / "overrides.jsonl").read_text().splitlines()[-1])
    assert entry == {"after_epoch": 1, "changes": ["blueprint.graph.cutoff: 4.0 -> 4.5"]}
    state = load_checkpoint(out / "last.pt")
    assert state["blueprint"]["graph"]["cutoff"] == 4.5 and state["overrides"] == [entry]


def test_override_applies_and_records_options(files, trained, tmp_path, capsys):
    out = copy_run(trained, tmp_path / "run")
    capsys.readouterr()
    argv = ["train", *args(files, out), "--epochs", "2", "--resume", "--override"]
    assert main([*argv, "--lr", "0.02", "--weight-decay", "0.1"]) == 0
    printed = capsys.readouterr().out
    assert "--override: lr: 0.001 -> 0.02" in printed
    assert "--override: weight_decay: 0.0 -> 0.1" in printed
    state = load_checkpoint(out / "last.pt")
    assert state["config"]["lr"] == 0.02 and state["config"]["weight_decay"] == 0.1
    assert state["optimizer"]["param_groups"][0]["weight_decay"] == 0.1  # applied, not kept
    with (out / "metrics.csv").open() as handle:
        # Cosine over 2 epochs from the new 0.02: 0.02 (0.01 + 0.99 (1 + cos(pi/2)) / 2).
        assert [float(r["lr"]) for r in csv.DictReader(handle)][-1] == pytest.approx(0.0101)
    # Asking again for what the checkpoint now holds is no change: no --override needed.
    argv = ["train", *args(files, out), "--epochs", "2", "--resume", "--lr", "0.02"]
    assert main(argv) == 0


def test_the_splits_cannot_be_overridden(files, trained, tmp_path, capsys):
    out = copy_run(trained, tmp_path / "run")
    capsys.readouterr()
    argv = [*args(files, out), "--resume", "--override", "--valid-fraction", "0.5"]  # last wins
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert "--valid-fraction 0.5 (the checkpoint's: 0.25)" in err and "new run" in err
    assert main(["train", *args(files, tmp_path / "new"), "--override"]) == 2
    assert "--override goes with --resume" in capsys.readouterr().err


def test_messages_tell_the_truth_about_batches_and_validation(files, tmp_path, capsys):
    argv = [str(files / "tiny.yaml"), str(files / "cu.extxyz"), "--out", str(tmp_path / "r")]
    argv += ["--epochs", "1", "--no-progress", "--batch-atoms", "1", "--valid-fraction", "0"]
    assert main(["train", *argv]) == 0
    printed = " ".join(capsys.readouterr().out.split())  # undo the console's wrapping
    assert "8 batches: 8 hold one structure larger than the --batch-atoms cap of 1" in printed
    assert "(up to 32 atoms)" in printed
    assert "no validation split (--valid-fraction 0)" in printed
    assert "training structures, no validation split (8 structures)" in printed
    assert "validation (epoch" not in printed


def test_checkpoints_get_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        path = save_checkpoint({"weights": {}}, tmp_path / "a.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 & ~0o027, not mkstemp's 0600


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without CUDA")
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_an_unusable_device_is_one_line_exit_2(files, trained, tmp_path, capsys, command):
    if command == "train":
        argv = ["train", *args(files, tmp_path / "r"), "--device", "cuda"]
    else:
        argv = ["evaluate", str(trained / "best.pt"), str(files / "cu.extxyz"), "--device", "cuda"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--device cuda: this torch cannot use it" in err and "use --device cpu" in err
    assert len(err.strip().splitlines()) == 1
    assert main([*argv[:-1], "gpu0"]) == 2
    assert "--device 'gpu0' is not a torch device" in capsys.readouterr().err


def test_weights_of_other_shapes_are_named(files, trained, tmp_path, capsys):
    state = load_checkpoint(trained / "best.pt")
    name = next(k for k, v in state["weights"].items() if v.dim() == 2)
    state["weights"][name] = torch.zeros(3, 3, dtype=state["weights"][name].dtype)
    bad = save_checkpoint(state, tmp_path / "bad.pt")
    data = str(files / "cu.extxyz")
    for argv in (["evaluate", str(bad), data, "--no-plot"], ["export", str(bad), "x.pt2", data]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"bad.pt: weights: tensor '{name}' has shape (3, 3)" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    # A resumed run on a blueprint of other sizes, overridden, is refused the same way.
    (files / "wider.yaml").write_text(TINY.replace("filters: 8", "filters: 16"))
    out = copy_run(trained, tmp_path / "run")
    argv = ["train", *args(files, out, "wider.yaml"), "--resume", "--override"]
    assert main(argv) == 2
    assert "last.pt: weights: tensor" in capsys.readouterr().err


def test_a_nan_energy_is_refused_where_it_is(files, trained, tmp_path, capsys):
    frames = read(files / "cu.extxyz", index=":")
    frames[3].calc.results["energy"] = np.nan
    write(tmp_path / "nan.extxyz", frames, format="extxyz")
    evaluate = ["evaluate", str(trained / "best.pt"), str(tmp_path / "nan.extxyz"), "--no-plot"]
    train = ["train", str(files / "tiny.yaml"), str(tmp_path / "nan.extxyz")]
    for argv in (evaluate, [*train, "--out", str(tmp_path / "r")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "nan.extxyz: structure 3 has a non-finite value in energy" in err
