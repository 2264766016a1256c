"""The run lock, parent-death of workers, SIGTERM as Ctrl-C, the journal's lock and repair.

Real processes throughout: a "command" is a Python child of the test that starts a
grandchild the way :class:`~geocompose.search.processes.Workers` does; the command is
killed with SIGKILL and the grandchild must be gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import weakref
from pathlib import Path

import pytest

from geocompose.search.config import SearchError
from geocompose.search.processes import BOOTSTRAP, RunLock, interrupts
from geocompose.search.storage import FlockLock, repair_journal
from search_procs import alive, wait_gone

def command_with_child(tmp_path: Path, child_code: str) -> tuple[subprocess.Popen, int]:
    """Start a 'command' that starts one child running ``child_code`` (with argv
    PARENT_PID as the workers get it) in its own session; returns (command, child pid)."""
    pidfile = tmp_path / "child.pid"
    command = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        child = subprocess.Popen(
            [sys.executable, "-c", {child_code!r}, str(os.getpid())], start_new_session=True
        )
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(600)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", command])
    deadline = time.monotonic() + 60
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline, "the command never started its child"
        time.sleep(0.05)
    return process, int(pidfile.read_text())


def test_a_worker_dies_with_its_command(tmp_path):
    # The worker's real bootstrap, with the worker module swapped for a long sleep.
    code = BOOTSTRAP.replace(
        'runpy.run_module("geocompose.search.worker", run_name="__main__", alter_sys=True)',
        "import time; time.sleep(600)",
    )
    assert code != BOOTSTRAP
    command, child = command_with_child(tmp_path, code)
    time.sleep(0.5)  # past the bootstrap's parent check
    assert alive(child)
    command.kill()
    command.wait()
    assert wait_gone([child], timeout=5) == [], "the worker outlived its command"


def test_without_the_bootstrap_the_child_is_orphaned(tmp_path):
    """The planted defect: the same child without the parent-death request survives,
    so the test above can fail."""
    command, child = command_with_child(tmp_path, "import time; time.sleep(600)")
    command.kill()
    command.wait()
    try:
        assert wait_gone([child], timeout=1.0) == [child]
    finally:
        os.kill(child, signal.SIGKILL)


def test_bootstrap_exits_when_its_parent_is_already_gone():
    # argv names a parent that is not this process's parent: exit 0 before any import.
    result = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, "1"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stderr == ""


def test_the_run_lock_is_exclusive_and_held_by_inheriting_workers(tmp_path):
    with RunLock(tmp_path) as lock:
        with pytest.raises(SearchError, match="another geocompose search is running"):
            with RunLock(tmp_path, wait_s=0.2):
                pass
        # A worker inherits the lock: it stays held after the command lets go.
        worker = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"], pass_fds=(lock.fd,)
        )
    try:
        with pytest.raises(SearchError):
            with RunLock(tmp_path, wait_s=0.2):
                pass
    finally:
        worker.kill()
        worker.wait()
    with RunLock(tmp_path, wait_s=5):  # the kernel released it with the last holder
        pass


def test_the_run_lock_waits_for_dying_workers(tmp_path):
    with RunLock(tmp_path) as lock:
        worker = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(1.5)"], pass_fds=(lock.fd,)
        )
    start = time.monotonic()
    with RunLock(tmp_path, wait_s=30):
        waited = time.monotonic() - start
    worker.wait()
    assert 0.3 < waited < 30


def test_sigterm_is_held_while_the_study_is_written_and_raised_where_safe():
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with interrupts() as signals:
        os.kill(os.getpid(), signal.SIGTERM)  # as if Optuna were writing: held
        time.sleep(0.2)
        assert signals.pending == "SIGTERM"
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            signals.check()
    with pytest.raises(KeyboardInterrupt, match="SIGINT"):
        with interrupts() as signals, signals.raising():  # training: raised at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler runs before this returns
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == previous


def test_a_signal_that_lands_in_a_weakref_callback_still_interrupts(capfd):
    """Python cannot raise out of a weakref callback (the import system's module locks
    have one): the interrupt lost there is delivered again, and nothing is printed."""

    class Referent:
        pass

    def callback(_):
        signal.raise_signal(signal.SIGTERM)  # the handler runs inside this callback
        sum(range(1000))

    previous_hook = sys.unraisablehook
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        with interrupts() as signals, signals.raising():
            referent = Referent()
            reference = weakref.ref(referent, callback)
            del referent  # the callback runs here
            time.sleep(5)  # the signal, delivered again, raises before this returns
    assert reference() is None
    assert sys.unraisablehook is previous_hook
    assert "Exception ignored" not in capfd.readouterr().err


def test_the_journal_lock_is_released_when_its_holder_is_killed(tmp_path):
    path = tmp_path / "search.journal.lock"
    # The holder takes the lock as FlockLock does (importing geocompose costs seconds).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import fcntl, os, time; fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    lock = FlockLock(path)
    start = time.monotonic()
    assert lock.acquire()
    lock.release()
    assert time.monotonic() - start < 1.0  # no grace period to wait out


def test_a_journal_cut_by_a_kill_is_repaired_and_readable(tmp_path):
    optuna = pytest.importorskip("optuna")
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    def journal(path):  # locked as the search locks it
        return JournalStorage(JournalFileBackend(str(path), lock_obj=FlockLock(f"{path}.lock")))

    path = tmp_path / "search.journal"
    study = optuna.create_study(study_name="cut", storage=journal(path))
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    whole = path.read_bytes()
    half = json.dumps({"op_code": 4, "worker_id": "w", "study_id": 0})[:20].encode()
    path.write_bytes(whole + half)
    # The planted defect: appending after the cut line corrupts the journal for Optuna.
    spoiled = tmp_path / "spoiled.journal"
    spoiled.write_bytes(whole + half)
    broken = optuna.load_study(study_name="cut", storage=journal(spoiled))
    with pytest.raises(Exception):  # Optuna reads its new trial back garbled
        broken.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)

    assert repair_journal(path) is True
    assert path.read_bytes() == whole
    assert repair_journal(path) is False  # nothing more to cut
    again = optuna.load_study(study_name="cut", storage=journal(path))
    again.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    assert len(again.trials) == 3
