"""``geocompose expressivity``: a table per suite, CSV, and exit code 2 on bad input."""

from __future__ import annotations

import csv

import pytest

from geocompose.cli.expressivity import parse_layers
from geocompose.cli.main import main


def test_quick_chains_table_and_csv(tmp_path, capsys):
    out_csv = tmp_path / "cells.csv"
    code = main(
        [
            "expressivity",
            "blueprints/schnet.yaml",
            "--quick",
            "--layers",
            "1,3",
            "--seeds",
            "1",
            "--csv",
            str(out_csv),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "k-chains (k = 4)" in text and "quick" in text
    assert "schnet" in text and "✗ =0" in text
    rows = list(csv.DictReader(out_csv.open()))
    assert [(r["model"], r["layers"], r["accuracy"]) for r in rows if r["readout"] != "oracle"] == [
        ("schnet", "1", "50.0"),
        ("schnet", "3", "50.0"),
    ]


def test_quick_symmetric_suite_columns_are_folds(capsys):
    code = main(
        [
            "expressivity",
            "blueprints/schnet.yaml",
            "--suite",
            "rotsym",
            "--quick",
            "--folds",
            "2,3",
            "--seeds",
            "1",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "rotsym-2" in text and "rotsym-3" in text and "dipole (charges)" in text


def test_trained_cell(capsys):
    code = main(
        ["expressivity", "blueprints/schnet.yaml", "--layers", "1", "--seeds", "2", "--epochs", "2"]
    )
    assert code == 0
    assert "2 seeds (fresh), 2 epochs" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["expressivity", "no/such.yaml", "--quick"],
        ["expressivity", "blueprints/schnet.yaml", "--layers", "0..2"],
        ["expressivity", "blueprints/schnet.yaml", "--suite", "nope"],
    ],
)
def test_bad_input_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        code = main(argv)
        raise SystemExit(code)
    assert stop.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_parse_layers():
    assert parse_layers("1..6") == (1, 2, 3, 4, 5, 6)
    assert parse_layers("2,5") == (2, 5)
    assert parse_layers("3") == (3,)
