"""``geocompose info``: type trace, summary, block reprs, and the data-flow graph."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import geocompose
from geocompose.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SCHNET = str(REPO / "blueprints" / "schnet.yaml")


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # keep rich from folding names in tables


def test_prints_trace_summary_and_every_block(capsys):
    assert main(["info", SCHNET]) == 0
    out = capsys.readouterr().out
    model = geocompose.compile(SCHNET)
    assert "schnet: type trace" in out
    assert model.trace.summary() in out
    for row in model.trace.rows:
        assert row.knob in out
    # One repr per built block, labelled with its knob; the repr carries the signature.
    block_lines = [line for line in out.splitlines() if line.startswith("[")]
    assert len(block_lines) == len(model.blocks) == len(model.trace.rows)
    assert "[interactions[0]#6] SchNetInteraction(" in out
    assert "reads {node_features: 128x0e per node" in out
    assert "guarantee=O(3), weights=72448" in out


def test_graph_as_dot(tmp_path, capsys):
    target = tmp_path / "schnet.dot"
    assert main(["info", SCHNET, "--graph", str(target)]) == 0
    text = target.read_text()
    assert text.startswith('digraph "schnet" {')
    assert '"[readout.forces] gradient" -> "forces"' in text
    assert f"wrote {target}" in capsys.readouterr().out


def test_graph_as_png(tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "schnet.png"
    assert main(["info", SCHNET, "--graph", str(target)]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_without_matplotlib_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    assert main(["info", SCHNET, "--graph", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'geocompose[draw]'" in err and "FILE.dot" in err


def test_graph_format_is_checked_before_compiling(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["info", "does-not-matter.yaml", "--graph", "g.svg"])
    assert exit_.value.code == 2
    assert "'g.svg': the file must end in .dot or .png" in capsys.readouterr().err


def test_unwritable_graph_file_is_a_user_error(tmp_path, capsys):
    target = tmp_path / "no" / "such" / "dir" / "g.dot"
    assert main(["info", SCHNET, "--graph", str(target)]) == 2
    assert f"geocompose: cannot write {target}" in capsys.readouterr().err


def test_invalid_blueprint_is_located(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (REPO / "blueprints" / "schnet.yaml").read_text().replace("cutoff: 5.0", "cutoff: -1")
    )
    assert main(["info", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"{bad}:") and "graph.cutoff: must be >= 0.5" in err
    assert out == ""


def test_missing_file(capsys):
    assert main(["info", "no/such/blueprint.yaml"]) == 2
    assert "no such blueprint file: no/such/blueprint.yaml" in capsys.readouterr().err
