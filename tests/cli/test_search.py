"""``geocompose search`` and ``geocompose space`` through the command line.

The verifier is stood in for (the engine's tests run the real one); training is real.
"""

from __future__ import annotations

import importlib

import pytest
import yaml

import geocompose
import geocompose.data.dataset
from geocompose.cli.main import main
from geocompose.verification.report import VerificationReport
from search_procs import DATA, ROOT, SPACE

pytest.importorskip("optuna")
pytest.importorskip("geocompose.train")  # the trainer may land separately


@pytest.fixture
def passing_verifier(monkeypatch):
    monkeypatch.setattr(
        importlib.import_module("geocompose.verification"),
        "verify",
        lambda *a, **k: VerificationReport("x", 0, "O(3)", "O(3)"),
    )


def search_args(tmp_path, trials: int) -> list[str]:
    """``geocompose search`` on SPACE (6 designs, written into tmp_path) and 8
    structures, 1 epoch per trial, results in tmp_path/out."""
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    return [
        "search", str(space), str(DATA), "--trials", str(trials), "--budget", "1",
        "--structures", "8", "--out", str(tmp_path / "out"),
    ]  # fmt: skip


def test_search_writes_front_plot_blueprints_and_best(tmp_path, capsys, passing_verifier):
    out = tmp_path / "out"
    args = search_args(tmp_path, trials=2)
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Pareto front" in text and "2 complete" in text
    assert (out / "pareto.png").stat().st_size > 1000
    exported = sorted((out / "trials").glob("trial_*.yaml"))
    assert [p.name for p in exported] == ["trial_0000.yaml", "trial_0001.yaml"]

    # The same command again: the study is finished, nothing is re-run; --best prints YAML only.
    assert main([*args, "--best"]) == 0
    captured = capsys.readouterr()
    chosen = yaml.safe_load(captured.out)
    assert chosen["interactions"][0]["repeat"] in (1, 2)
    assert "nothing to run" not in captured.out  # progress stays off stdout with --best
    model = geocompose.compile(chosen)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert len(list((out / "runs").iterdir())) == 2


def test_search_refuses_a_mismatched_study(tmp_path, passing_verifier):
    args = search_args(tmp_path, trials=1)
    assert main(args) == 0
    assert (
        main([*args, "--sampler", "tpe"]) == 2
    )  # one objective cannot continue a three-objective study


def test_tpe_reports_every_epoch_to_the_pruner(tmp_path, passing_verifier):
    from geocompose.search.engine import SearchConfig, run_search

    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    data = geocompose.data.dataset.Dataset.from_file(DATA).subset(range(8))
    study = run_search(
        space,
        data,
        trials=2,
        out=tmp_path / "out",
        config=SearchConfig(budget_epochs=2, sampler="tpe"),
        echo=lambda *a: None,
    )
    assert len(study.directions) == 1
    for trial in study.trials:
        assert trial.state.name == "COMPLETE"
        assert sorted(trial.intermediate_values) == [1, 2]
        assert trial.value == trial.intermediate_values[2] == trial.user_attrs["valid_error"]


def test_expressivity_can_be_a_fourth_objective(tmp_path, passing_verifier):
    pytest.importorskip("geocompose.expressivity")
    args = [*search_args(tmp_path, trials=1), "--rank-expressivity"]
    assert main(args) == 0
    from geocompose.search.engine import SearchConfig, open_study
    from geocompose.search.space import read_space

    study = open_study(
        read_space(tmp_path / "space.yaml"),
        tmp_path / "out",
        config=SearchConfig(expressivity_objective=True),
    )
    assert [d.name for d in study.directions] == ["MINIMIZE"] * 3 + ["MAXIMIZE"]
    (trial,) = study.trials
    assert 0 <= trial.values[3] == trial.user_attrs["expressivity"] <= 100


def test_space_command_is_registered(capsys):
    assert main(["space", str(ROOT / "examples" / "search-space.yaml")]) == 0
    assert "type-check" in capsys.readouterr().out
