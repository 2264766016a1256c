"""Fault injection on ``geocompose search``: real commands, killed for real.

``kill -9`` of the command at random points (while it imports, once its workers run,
while a trial trains, just after a trial's blueprint is written), each kill followed by
a check that no process of it is left; then the same command to the end, and the
study must be whole: every design trained exactly once, every killed trial failed and
re-tried once, every finished trial's blueprint on disk, no temporary file left. The
kill rounds stop after ``ROUNDS_S`` seconds (at least two run), so the test is bounded
(about a minute on an idle 2-core machine; each round pays for importing torch).
First a SIGTERM once a trial has finished: one line on stderr, exit 130, no traceback,
no trial left running.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("optuna")
pytest.importorskip("geocompose.train")

from search_procs import DESIGNS, SPACE, search_command, serving, start, wait_gone

ROUNDS_S = 40.0
SEED = int(os.environ.get("GEOCOMPOSE_FAULT_SEED", "17"))


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _count(directory: Path, pattern: str) -> int:
    return len(list(directory.glob(pattern))) if directory.is_dir() else 0


def _kill_at(process, out: Path, point: str, rng: random.Random) -> str:
    """SIGKILL ``process`` at ``point``; returns what actually happened first."""
    runs, yamls = _count(out / "runs", "trial_*"), _count(out / "trials", "trial_*.yaml")
    events = {
        "importing": lambda: True,
        "workers running": lambda: len(serving(out)) > 1,
        "training": lambda: _count(out / "runs", "trial_*") > runs,
        "blueprint written": lambda: _count(out / "trials", "trial_*.yaml") > yamls,
    }
    seen = _wait_for(lambda: events[point]() or process.poll() is not None, timeout=60)
    time.sleep(rng.uniform(0, 2.0 if point == "importing" else 0.5))
    process.send_signal(signal.SIGKILL)
    process.wait()
    return point if seen else "finished first"


def _study(out: Path):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(out / "search.journal")))
    return optuna.load_study(study_name="fault-search", storage=storage)


def assert_study_whole(out: Path) -> None:
    """Nothing lost, nothing repeated, nothing left over (see the module docstring)."""
    trials = [t for t in _study(out).trials if not t.user_attrs.get("surplus")]
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states and "WAITING" not in states, states
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == DESIGNS, states
    designs = {tuple(sorted(t.params.items())) for t in complete}
    assert len(designs) == DESIGNS  # each design trained once, none twice
    for failed in (t for t in trials if t.state.name == "FAIL"):
        assert "killed" in failed.user_attrs or "interrupted" in failed.user_attrs
        retries = [t for t in trials if t.user_attrs.get("retry_of") == failed.number]
        assert len(retries) == 1, f"trial {failed.number} re-tried {len(retries)} times"
    yamls = sorted(p.name for p in (out / "trials").glob("trial_*.yaml"))
    assert yamls == [f"trial_{t.number:04d}.yaml" for t in complete]
    for trial in complete:
        blueprint = yaml.safe_load((out / "trials" / f"trial_{trial.number:04d}.yaml").read_text())
        assert blueprint == trial.user_attrs["blueprint"]
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == [f"trial_{t.number:04d}" for t in complete]  # killed runs cleared
    for run in runs:  # one training per trial: one row per epoch of the budget
        assert len((out / "runs" / run / "metrics.csv").read_text().splitlines()) == 1 + 1
    leftovers = [
        p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")
    ]
    assert leftovers == []


def _sigterm_when_a_trial_finished(space: Path, out: Path, log: Path) -> None:
    """SIGTERM once a trial has finished: exit 130, one line, no trial left RUNNING."""
    process = start(search_command(space, out, DESIGNS, "--workers", "2"), log)
    assert _wait_for(lambda: (out / "trials").is_dir() or process.poll() is not None, 300)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    assert wait_gone(serving(out), timeout=10) == []
    text = log.read_text()
    assert "Traceback" not in text and "Error" not in text, text
    assert text.strip().endswith("geocompose: interrupted")
    states = {t.state.name for t in _study(out).trials}
    assert "RUNNING" not in states  # consistent without a re-run


def test_sigterm_and_kill_9_at_random_points_lose_and_repeat_nothing(tmp_path):
    rng = random.Random(SEED)
    space, out = tmp_path / "space.yaml", tmp_path / "out"
    space.write_text(SPACE)
    _sigterm_when_a_trial_finished(space, out, tmp_path / "sigterm.log")
    points = ["importing", "workers running", "training", "blueprint written"]
    happened, started = [], time.monotonic()
    while len(happened) < 2 or time.monotonic() - started < ROUNDS_S:
        point = points[len(happened)] if len(happened) < len(points) else rng.choice(points)
        workers = "2" if point == "workers running" else rng.choice(["1", "2"])
        process = start(search_command(space, out, DESIGNS, "--workers", workers), tmp_path / "log")
        happened.append(_kill_at(process, out, point, rng))
        assert wait_gone(serving(out), timeout=10) == [], f"orphans after a kill while {point}"
        if len(happened) >= len(points):
            break
    final = start(search_command(space, out, DESIGNS, "--workers", "2"), tmp_path / "log")
    assert final.wait(timeout=600) == 0, (tmp_path / "log").read_text()[-3000:]
    assert serving(out) == []
    print(f"seed {SEED}: killed while {happened}")
    assert_study_whole(out)
    log = (tmp_path / "log").read_text()
    assert "Traceback" not in log, log[-3000:]
