"""``geocompose study``: the same data, budget and seed for several blueprints; a table,
a CSV with measured symmetry errors, and exit code 2 for a study that cannot compare."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import yaml
from ase.io import read, write

from geocompose.blueprint import read_blueprint
from geocompose.cli.main import main

ROOT = Path(__file__).parents[2]
DATA = ROOT / "geocompose" / "data" / "examples" / "ethanol_xtb_small.extxyz"


def inputs(tmp_path: Path) -> tuple[list[str], str]:
    """Two small blueprints, one strategy each, and 12 ethanol structures."""
    base = read_blueprint(ROOT / "blueprints" / "mlp-sign-frames.yaml").blueprint.model_dump(
        mode="json"
    )
    paths = []
    for name, strategy in (
        ("exact-frames", "sign_equivariant_frames"),
        ("augmented", "augmentation"),
    ):
        bp = copy.deepcopy(base)
        bp["name"] = name
        bp["symmetry"]["strategy"] = strategy
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(bp))
        paths.append(str(path))
    data = tmp_path / "ethanol.extxyz"
    write(data, read(DATA, ":12"))
    return paths, str(data)


def test_study_trains_each_blueprint_alike_and_measures_them(tmp_path, capsys):
    blueprints, data = inputs(tmp_path)
    out = tmp_path / "study"
    argv = ["study", *blueprints, data, "--epochs", "1", "--out", str(out), "--sizes", "3", "7"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "exact-frames" in text and "augmented" in text and "rotation" in text
    with (out / "study.csv").open() as handle:
        table = list(csv.DictReader(handle))
    # A learning curve: each blueprint at each size, on the same test split.
    assert [(r["blueprint"], r["train_structures"]) for r in table] == [
        ("exact-frames", "3"),
        ("exact-frames", "7"),
        ("augmented", "3"),
        ("augmented", "7"),
    ]
    rows = {row["blueprint"]: row for row in table}  # the larger run of each
    assert rows["exact-frames"]["strategy"] == "sign_equivariant_frames"
    assert float(rows["exact-frames"]["rotation_error"]) < 1e-9  # exact frames, trained
    assert float(rows["augmented"]["rotation_error"]) > 1e-6  # augmentation is not exact
    for row in rows.values():
        assert float(row["energy_mae"]) > 0 and float(row["forces_mae"]) > 0
        assert float(row["inference_ms_per_structure"]) > 0 and row["epochs"] == "1"
        assert 0 <= float(row["nve_drift"]) < float("inf")  # the test split has molecules
    assert (out / "exact-frames-n3" / "best.pt").exists() and (
        out / "augmented-n7" / "best.pt"
    ).exists()
    assert (out / "study.png").stat().st_size > 0


def test_a_study_without_a_test_split_or_with_twin_names_is_refused(tmp_path, capsys):
    blueprints, data = inputs(tmp_path)
    out = str(tmp_path / "study")
    assert main(["study", blueprints[0], data, "--test-fraction", "0", "--out", out]) == 2
    assert "test split" in capsys.readouterr().err
    assert main(["study", blueprints[0], blueprints[0], data, "--out", out]) == 2
    assert "share a name" in capsys.readouterr().err
    assert main(["study", blueprints[0], data, "--sizes", "500", "--out", out]) == 2
    assert "training-set sizes" in capsys.readouterr().err
