"""How workers take trials: the study's target counted across workers, surplus trials,
interrupted and killed trials re-tried exactly once, stale heartbeats (SQLite RDB).

The objectives here are plain functions of the trial: what is tested is the
bookkeeping, on real Optuna storages."""

from __future__ import annotations

import time
from collections import Counter

import pytest

optuna = pytest.importorskip("optuna")
from optuna.trial import TrialState

from geocompose.search import trials
from geocompose.search.trials import _is_surplus, recover, retry, run_trials


def journal_study(tmp_path, name="t"):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from geocompose.search.storage import FlockLock

    path = tmp_path / "search.journal"
    storage = JournalStorage(JournalFileBackend(str(path), lock_obj=FlockLock(f"{path}.lock")))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(study_name=name, storage=storage, load_if_exists=True)


def square(trial):
    return trial.suggest_int("x", 0, 9) ** 2


def test_a_worker_stops_at_the_study_target_counting_other_workers(tmp_path):
    study = journal_study(tmp_path)
    study.optimize(square, n_trials=2)  # as if another worker had finished two
    assert run_trials(study, square, target=3, limit=10, out=tmp_path, heartbeats=False) == 1
    assert len(study.trials) == 3
    # The last one is running elsewhere: a journal worker leaves it to its sibling.
    study.ask()
    assert run_trials(study, square, target=4, limit=10, out=tmp_path, heartbeats=False) == 0


def test_a_trial_with_the_target_ahead_of_it_is_surplus(tmp_path):
    study = journal_study(tmp_path)
    first = study.ask()  # two workers ask at the same moment, one trial left
    second = study.ask()
    assert not _is_surplus(first, target=1)
    assert _is_surplus(second, target=1)
    study.tell(first, state=TrialState.FAIL)  # a failed trial holds nothing
    assert not _is_surplus(second, target=1)


def test_surplus_trials_are_marked_and_left_out_of_the_results(tmp_path, monkeypatch):
    from geocompose.search.results import trial_rows

    study = journal_study(tmp_path)
    other = study.ask()  # another worker took the last trial after this one looked

    def late(trial):  # this worker's trial: runs only if not surplus
        raise AssertionError("a surplus trial was run")

    # The race: this worker's look at the study came before the other's ask.
    monkeypatch.setattr(trials, "_states", lambda study: Counter())
    run_trials(study, late, target=1, limit=1, out=tmp_path, heartbeats=False)
    (surplus,) = [t for t in study.trials if t.number != other.number]
    assert surplus.state is TrialState.FAIL and surplus.user_attrs["surplus"] is True
    assert [row.number for row in trial_rows(study)] == [other.number]


def test_an_interrupted_trial_fails_and_is_retried_once(tmp_path):
    study = journal_study(tmp_path)
    (tmp_path / "runs" / "trial_0000").mkdir(parents=True)  # its partial training run

    def interrupted(trial):
        trial.suggest_int("x", 0, 9)
        raise KeyboardInterrupt  # SIGTERM becomes this (processes.Interrupts)

    with pytest.raises(KeyboardInterrupt):
        run_trials(study, interrupted, target=2, limit=2, out=tmp_path, heartbeats=False)
    failed, again = study.trials
    assert failed.state is TrialState.FAIL and "interrupted" in failed.user_attrs
    assert again.state is TrialState.WAITING and again.user_attrs["retry_of"] == failed.number
    assert not (tmp_path / "runs" / "trial_0000").exists()
    # Recovery after it finds nothing more to do: one retry per failure, never two.
    assert recover(study, tmp_path) == []
    assert retry(study, failed.number) is None
    run_trials(study, square, target=1, limit=1, out=tmp_path, heartbeats=False)
    assert study.trials[1].state is TrialState.COMPLETE
    assert study.trials[1].params == failed.params  # the same design, re-tried


def test_recover_fails_killed_trials_and_retries_each_once(tmp_path):
    study = journal_study(tmp_path)
    study.optimize(square, n_trials=1)
    killed = study.ask()  # its process was killed: RUNNING forever
    killed.suggest_int("x", 0, 9)
    (tmp_path / "trials").mkdir()
    (tmp_path / "trials" / ".trial_0001.yaml.tmp").write_text("half")
    (tmp_path / "trials" / "trial_0001.yaml").write_text("written before the kill")
    assert recover(study, tmp_path) == [killed.number]
    assert recover(study, tmp_path) == []  # idempotent: a kill during recovery is harmless
    frozen = study.trials[killed.number]
    assert frozen.state is TrialState.FAIL and "killed" in frozen.user_attrs
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == killed.number]
    assert len(retries) == 1 and retries[0].system_attrs["fixed_params"] == frozen.params
    assert list((tmp_path / "trials").iterdir()) == []


def test_a_dead_workers_trial_is_failed_by_heartbeat_and_retried(tmp_path):
    pytest.importorskip("sqlalchemy")
    from geocompose.search.config import SearchConfig
    from geocompose.search.space import Space
    from geocompose.search.storage import open_study

    url = f"sqlite:///{tmp_path / 'study.db'}"
    space = Space({"name": "hb", "x": {"choice": [1, 2]}}, str(tmp_path / "hb.yaml"))
    config = SearchConfig(sampler="tpe", heartbeat_s=1)
    study = open_study(space, tmp_path, url, config)
    dead = study.ask()  # a worker on another machine, which then died
    dead.suggest_int("x", 0, 9)
    study._storage.record_heartbeat(dead._trial_id)
    start = time.monotonic()
    ran = run_trials(study, square, target=1, limit=5, out=tmp_path, heartbeats=True, poll_s=0.5)
    assert time.monotonic() - start >= 2  # waited out the grace period (2 heartbeats)
    assert ran == 1
    failed, retried = study.trials
    assert failed.state is TrialState.FAIL
    assert retried.state is TrialState.COMPLETE and retried.user_attrs["retry_of"] == 0
    assert retried.params == failed.params


def test_a_result_refused_because_another_worker_failed_the_trial_is_dropped(tmp_path):
    study = journal_study(tmp_path)
    (tmp_path / "runs" / "trial_0000").mkdir(parents=True)

    def taken_for_dead(trial):  # another worker saw no heartbeat and failed this trial
        value = square(trial)
        trial.study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        return value

    assert run_trials(study, taken_for_dead, target=1, limit=1, out=tmp_path, heartbeats=False) == 1
    assert study.trials[0].state is TrialState.FAIL
    assert not (tmp_path / "runs" / "trial_0000").exists()
