"""``geocompose train`` and ``geocompose evaluate`` end to end on a slice of the
shipped sample: checkpoints, logs, resume, metrics, parity plot, and exit code 2 with
the structure named for bad data."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from ase.build import molecule
from ase.io import read, write
from train_cli_cases import write_inputs

from geocompose.cli.main import main
from geocompose.train import load_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_inputs(tmp_path_factory.mktemp("train"), 20)


def test_train_resume_and_evaluate(files, tmp_path, capsys):
    out = tmp_path / "run"
    common = [
        str(files / "tiny.yaml"),
        str(files / "cu.extxyz"),
        "--out",
        str(out),
        "--batch-atoms",
        "96",
        "--valid-fraction",
        "0.2",
        "--test-fraction",
        "0.1",
        "--lr",
        "5e-3",
        "--no-progress",
    ]
    assert main(["train", *common, "--epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "epoch 1" in text and "14 train / 4 valid / 2 test" in text
    assert (
        "energy per atom" in text
        and "forces (per component)" in text
        and "test (2 structures)" in text
    )
    assert main(["train", *common, "--epochs", "2", "--resume"]) == 0
    text = capsys.readouterr().out
    assert "resuming" in text and "after epoch 1 of 2" in text and "epoch 2" in text
    with (out / "metrics.csv").open() as handle:
        assert [r["epoch"] for r in csv.DictReader(handle)] == ["1", "2"]
    assert load_checkpoint(out / "last.pt")["epoch"] == 2

    plot = tmp_path / "parity.png"
    report = tmp_path / "metrics.json"
    assert (
        main(
            [
                "evaluate",
                str(out / "best.pt"),
                str(files / "cu.extxyz"),
                "--split",
                "test",
                "--plot",
                str(plot),
                "--json",
                str(report),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "test: 2 structures, averaged weights" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads(report.read_text())
    assert metrics["structures"] == 2
    assert metrics["energy_per_atom_mae"] == pytest.approx(metrics["energy_mae"] / 32)
    assert {"forces_mae", "forces_rmse", "energy_rmse", "stress_mae"} <= set(metrics)

    assert (
        main(["evaluate", str(out / "best.pt"), str(files / "cu.extxyz"), "--no-plot", "--raw"])
        == 0
    )
    assert "all: 20 structures, raw weights" in capsys.readouterr().out
    assert not (out / "best_parity.png").exists()


def test_bad_data_names_the_structure(files, tmp_path, capsys):
    frames = read(files / "cu.extxyz", index=":4")
    frames[2].calc.results["forces"][5, 1] = np.nan
    write(tmp_path / "bad.extxyz", frames, format="extxyz")
    code = main(
        [
            "train",
            str(files / "tiny.yaml"),
            str(tmp_path / "bad.extxyz"),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "structure 2 has a non-finite value in forces (atom 5)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "{bp}", "{missing}"], "no data file"),
        (
            ["train", "{bp}", "{data}", "--epochs", "0"],
            "--epochs, --batch-atoms and --batch-edges must be positive",
        ),
        (["train", "{bp}", "{data}", "--out", "{nowhere}", "--resume"], "no checkpoint"),
        (["train", "{bp}", "{data}", "--split-files", "{data}"], "TRAIN VALID [TEST]"),
        (["evaluate", "{missing}", "{data}"], "no checkpoint"),
        (["evaluate", "{bp}", "{data}"], "cannot read checkpoint"),
    ],
)
def test_user_mistakes_exit_2(files, tmp_path, capsys, argv, message):
    names = {
        "bp": files / "tiny.yaml",
        "data": files / "cu.extxyz",
        "missing": tmp_path / "none.extxyz",
        "nowhere": tmp_path / "empty",
    }
    assert main([a.format(**names) for a in argv]) == 2
    assert message in capsys.readouterr().err


def test_export_writes_a_file_that_matches_the_checkpoint(files, tmp_path, capsys):
    run = tmp_path / "run"
    argv = [str(files / "tiny.yaml"), str(files / "cu.extxyz"), "--out", str(run)]
    assert main(["train", *argv, "--epochs", "1", "--no-progress", "--dtype", "float64"]) == 0
    capsys.readouterr()
    pt2 = tmp_path / "tiny.pt2"
    assert main(["export", str(run / "best.pt"), str(pt2), str(files / "cu.extxyz")]) == 0
    printed = capsys.readouterr().out
    assert pt2.is_file() and "compared on 4 structures" in printed
    largest = printed.split("largest difference")[1].replace(",", " ").split()
    values = dict(zip(largest[::2], map(float, largest[1::2])))
    assert set(values) == {"energy", "forces"} and max(values.values()) < 1e-9, printed
    # A user's mistake is one line and exit 2: a structure of an element the model lacks.
    write(tmp_path / "h2.extxyz", [molecule("H2"), molecule("H2")], format="extxyz")
    assert main(["export", str(run / "best.pt"), str(pt2), str(tmp_path / "h2.extxyz")]) == 2
    assert "structure 0 contains H" in capsys.readouterr().err
