"""``geocompose expressivity``: oracle rows in the table and CSV, the PNG plot, and a clear
refusal of ``--plot`` without matplotlib."""

from __future__ import annotations

import csv
import sys

import pytest

from geocompose.cli.main import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_quick_chains_writes_oracle_rows_csv_and_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out_csv, out_png = tmp_path / "cells.csv", tmp_path / "cells.png"
    argv = ["expressivity", "blueprints/schnet.yaml", "--quick", "--layers", "2,3", "--seeds", "1"]
    code = main([*argv, "--csv", str(out_csv), "--plot", str(out_png)])
    assert code == 0
    text = capsys.readouterr().out
    assert "IGWL (oracle)" in text and "GWL (oracle)" in text and f"wrote {out_png}" in text
    rows = list(csv.DictReader(out_csv.open()))
    oracle = {(r["model"], r["layers"]): r["accuracy"] for r in rows if r["readout"] == "oracle"}
    # GWL separates 4-chains from floor(4/2) + 1 = 3 iterations; IGWL never does
    assert oracle == {
        ("IGWL", "2"): "50.0",
        ("IGWL", "3"): "50.0",
        ("GWL", "2"): "50.0",
        ("GWL", "3"): "100.0",
    }
    assert [r["model"] for r in rows if r["readout"] != "oracle"] == ["schnet", "schnet"]
    data = out_png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 5000


def test_counterexample_oracles_and_no_oracles_flag(tmp_path, capsys):
    out_csv = tmp_path / "cells.csv"
    argv = ["expressivity", "blueprints/schnet.yaml", "--suite", "counterexamples", "--quick"]
    argv += ["--seeds", "1", "--csv", str(out_csv)]
    assert main(argv) == 0
    rows = list(csv.DictReader(out_csv.open()))
    oracle = {(r["model"], r["pair"]): r["cell"] for r in rows if r["readout"] == "oracle"}
    assert oracle == {
        ("IGWL", "two-body"): "100",
        ("IGWL", "three-body"): "100",
        ("GWL", "two-body"): "100",
        ("GWL", "three-body"): "100",
    }
    assert main([*argv, "--no-oracles"]) == 0
    assert all(r["readout"] != "oracle" for r in csv.DictReader(out_csv.open()))
    assert "(oracle)" not in capsys.readouterr().out.split("counterexamples")[-1]


def test_plot_without_matplotlib_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(SystemExit) as stop:
        raise SystemExit(
            main(
                [
                    "expressivity",
                    "blueprints/schnet.yaml",
                    "--quick",
                    "--plot",
                    str(tmp_path / "x.png"),
                ]
            )
        )
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert (
        "geocompose[draw]" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    )
    assert not (tmp_path / "x.png").exists()
