"""The search engine: exhaustive small spaces, refusals, rejections, resume, workers."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from geocompose.search.designs import assignments
from geocompose.search.space import read_space

optuna = pytest.importorskip("optuna")
pytest.importorskip("geocompose.train")  # the trainer may land separately

from geocompose.data.dataset import Dataset
from geocompose.search.engine import SearchConfig, open_study, run_search
from geocompose.search.results import best, export_blueprints, pareto_front, plot_front, trial_rows

DATA = Path(__file__).parents[3] / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"

# 2 interaction types x 2 depths, at widths that train in about a second.
SPACE = """\
name: tiny-search
symmetry: {group: O(3), strategy: built_in}
graph: {type: radius, cutoff: 3.0}
embedding:
  species: [Cu]
  node: {type: learned, features: 4}
  radial: {type: bessel, num: 4}
  envelope: {type: polynomial, p: 6}
  angular: {l_max: 1}
interactions:
  - choice:
      - {type: schnet, filters: 4, repeat: {range: [1, 2]}}
      - {type: painn, repeat: {range: [1, 2]}}
  - {type: scalars}
readout:
  energy: {type: sum, hidden: [4]}
  forces: {type: gradient, of: energy}
"""

# PaiNN's vectors into SchNet: every candidate is ill-typed.
ILL_TYPED = SPACE.replace("  - {type: scalars}\n", "  - {type: schnet, filters: 4}\n").replace(
    "      - {type: schnet, filters: 4, repeat: {range: [1, 2]}}\n", ""
)

CONFIG = SearchConfig(budget_epochs=1, verify_samples=1)


def _space(tmp_path: Path, text: str = SPACE):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return read_space(path)


@pytest.fixture(scope="module")
def data():
    return Dataset.from_file(DATA).subset(range(12))


class _Killed(BaseException):
    """Stands for the process being killed (not an Exception: Optuna must not catch it)."""


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, data):
    """A 4-trial search killed in its third trial, a second trial left RUNNING by another
    killed worker, then the same command again."""
    from geocompose.search import objectives

    out = tmp_path_factory.mktemp("search")
    space = _space(out)
    real, calls = objectives.train_and_measure, []

    def dies_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise _Killed
        return real(*args)

    objectives.train_and_measure = dies_third
    try:
        with pytest.raises(_Killed):
            run_search(space, data, trials=4, out=out / "run", config=CONFIG, echo=lambda *a: None)
    finally:
        objectives.train_and_measure = real
    study = open_study(space, out / "run")
    first = {t.number: t.state.name for t in study.trials}
    orphan = study.ask()  # as if another worker died mid-trial: RUNNING forever
    messages = []
    study = run_search(space, data, trials=4, out=out / "run", config=CONFIG, echo=messages.append)
    return space, study, messages, out / "run", first, orphan.number


def test_assignments_cover_the_space_once(tmp_path):
    space = _space(tmp_path)
    found = list(assignments(space))
    assert len(found) == space.size == 4
    blueprints = [space.sample(_Fixed(a)) for a in found]
    stacks = {(b["interactions"][0]["type"], b["interactions"][0]["repeat"]) for b in blueprints}
    assert stacks == {("schnet", 1), ("schnet", 2), ("painn", 1), ("painn", 2)}


class _Fixed:
    def __init__(self, values):
        self.values = values

    def categorical(self, name, count):
        return self.values[name]

    def integer(self, name, low, high, log):
        return self.values[name]

    def real(self, name, low, high, log):
        return self.values[name]


def test_resume_keeps_finished_trials_and_resamples_the_killed_ones(resumed):
    _, study, messages, _, first, orphan = resumed
    assert [first[n] for n in (0, 1)] == ["COMPLETE", "COMPLETE"]
    assert first[2] != "COMPLETE" and orphan == 3  # the orphan took the last enqueued design
    states = {t.number: t.state.name for t in study.trials}
    assert states[0] == states[1] == "COMPLETE"  # kept, not re-run
    assert states[2] == states[orphan] == "FAIL"
    assert (
        sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == 4
    )  # what was asked, in total
    assert any("killed run" in m for m in messages)
    assert "WAITING" not in states.values()  # nothing enqueued beyond what was asked
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    # Each of the four designs was trained exactly once: the killed ones were re-sampled.
    designs = [tuple(sorted(t.params.items())) for t in study.trials if t.state.name == "COMPLETE"]
    assert len(designs) == len(set(designs)) == 4


def test_search_ranks_designs_on_a_pareto_front(resumed):
    _, study, _, out, _, _ = resumed
    rows = trial_rows(study)
    done = [r for r in rows if r.state == "complete"]
    front = pareto_front(rows)
    chosen = best(rows)
    # The better design (lowest validation error) is on the front and is the one chosen.
    assert chosen is min(done, key=lambda r: r.valid_error)
    # The smallest design is never dominated on parameter count.
    assert min(done, key=lambda r: r.params) in front
    for r in done:
        dominated = any(
            o.objectives != r.objectives and all(x <= y for x, y in zip(o.objectives, r.objectives))
            for o in done
        )
        assert (r in front) != dominated
    # Depth costs parameters, for both interaction types.
    params = {r.describe(): r.params for r in done}
    assert params["schnet x2 -> scalars (4 ch)"] > params["schnet -> scalars (4 ch)"]
    assert params["painn x2 -> scalars (4 ch)"] > params["painn -> scalars (4 ch)"]
    assert all(r.attrs["symmetry_error"] < 1e-6 for r in done)
    assert plot_front(rows, out / "pareto.png").stat().st_size > 1000


def test_exported_blueprints_compile_on_their_own(resumed):
    import geocompose

    _, study, _, out, _, _ = resumed
    paths = export_blueprints(trial_rows(study), out / "trials")
    assert len(paths) == 4
    for path in paths:
        model = geocompose.compile(str(path))
        assert (
            sum(p.numel() for p in model.parameters())
            == study.trials[int(path.stem[-4:])].user_attrs["params"]
        )


def test_ill_typed_candidates_are_pruned_before_any_weights(tmp_path, data):
    space = _space(tmp_path, ILL_TYPED)
    study = run_search(
        space, data, trials=2, out=tmp_path / "run", config=CONFIG, echo=lambda *a: None
    )
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert all("interactions[1]" in t.user_attrs["refused"] for t in study.trials)
    assert not (tmp_path / "run" / "runs").exists()  # nothing was trained


def test_a_larger_finite_space_starts_without_repeats(tmp_path, data):
    wide = ILL_TYPED.replace("features: 4}", "features: {choice: [2, 4, 8, 16]}}")
    space = _space(tmp_path, wide)
    assert space.size == 8
    study = run_search(
        space, data, trials=5, out=tmp_path / "run", config=CONFIG, echo=lambda *a: None
    )
    designs = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(designs) == len(set(designs)) == 5  # NSGA-II alone repeats itself on 8 designs
    assert all("refused" in t.user_attrs for t in study.trials)


def test_failed_symmetry_claim_is_rejected_not_ranked(tmp_path, data, monkeypatch):
    verify_module = importlib.import_module("geocompose.verification")
    from geocompose.verification.report import CheckResult, Verdict, VerificationReport

    def broken(candidate, samples, seed):
        report = VerificationReport("x", 0, "O(3)", "O(3)")
        report.checks.append(CheckResult("rotation", 0.3, 1e-10, Verdict.FAIL))
        return report

    monkeypatch.setattr(verify_module, "verify", broken)
    study = run_search(
        _space(tmp_path), data, trials=1, out=tmp_path / "run", config=CONFIG, echo=lambda *a: None
    )
    (trial,) = study.trials
    assert trial.state.name == "PRUNED" and "rotation" in trial.user_attrs["rejected"]
    assert best(trial_rows(study)) is None


@pytest.mark.slow
def test_two_workers_share_one_journal(tmp_path, data):
    study = run_search(
        _space(tmp_path),
        data,
        trials=4,
        workers=2,
        out=tmp_path / "run",
        config=CONFIG,
        echo=lambda *a: None,
    )
    assert (tmp_path / "run" / "search.journal").is_file()
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    designs = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(designs) == 4  # the enqueued grid was split between the workers, not repeated
