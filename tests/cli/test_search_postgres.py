"""The many-machine path for real: a PostgreSQL server started by this test, two
``geocompose search --storage postgresql://...`` commands on it (as two machines would
run them, each with its own ``--out``), one killed with SIGKILL in the middle of a
trial and started again while the other works. Together they must finish the study
with exactly ``--trials`` trials: the killed trial failed by its stale heartbeat and
its design re-tried once, every design trained exactly once, nothing lost.

The server is Debian's ``postgresql`` package (``initdb`` + ``pg_ctl`` in a temporary
directory, on a free loopback port, as the ``postgres`` user when run as root, which
PostgreSQL refuses); the client is ``psycopg2-binary`` (the ``test`` extra). Skipped,
saying which is missing, only where they are not installed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("optuna")
pytest.importorskip("geocompose.train")

from search_procs import SPACE, search_command, serving, start, wait_gone


def _server_binary(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A fresh PostgreSQL server and database; its URL (stopped and removed after)."""
    pytest.importorskip("psycopg2", reason="psycopg2-binary is not installed (test extra)")
    initdb, pg_ctl = _server_binary("initdb"), _server_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server installed (Debian: apt-get install -y postgresql)")
    as_user: list[str] = []
    # /tmp itself, not pytest's tmp_path: a root-owned 0700 parent would shut the
    # postgres user out of its own data directory.
    root = Path(tempfile.mkdtemp(prefix="geocompose-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser to start PostgreSQL as 'postgres'")
        try:
            shutil.chown(root, user="postgres")
        except LookupError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    run(initdb, "-D", str(data), "-A", "trust", "-U", "geocompose", "--no-sync")
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} -c fsync=off"
    )
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start")
    try:
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=port, user="geocompose", dbname="postgres"
        )
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE search")
        connection.close()
        yield f"postgresql+psycopg2://geocompose@127.0.0.1:{port}/search"
    finally:
        stop = [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(stop, check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


TRIALS = 4  # of the space's 6 designs: enough for two machines to share, and quick


_STORAGES: dict[str, object] = {}


def _study(url: str):
    """The study, through one storage per URL: a fresh ``load_study(storage=url)`` opens
    a new engine and connection each time (tens of ms), which made the watch below slower
    than a short trial."""
    import optuna

    if url not in _STORAGES:
        _STORAGES[url] = optuna.storages.RDBStorage(url)
    return optuna.load_study(study_name="fault-search", storage=_STORAGES[url])


def _state(url: str, number: int) -> str | None:
    trials = [t for t in _study(url).trials if t.number == number]
    return trials[0].state.name if trials else None


def _wait_for_line(process, log: Path, text: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} in {log} after {timeout} s"
        time.sleep(0.1)


def _running_trials(url: str, out: Path) -> list[int]:
    """Trials RUNNING in the study whose run directory is under ``out`` (one query)."""
    import optuna

    ours = {int(run.name[-4:]) for run in (out / "runs").glob("trial_*")}
    if not ours:
        return []
    running = _study(url).get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return sorted(t.number for t in running if t.number in ours)


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # a worker that just ended
            os.kill(pid, signum)


def _kill_mid_trial(url: str, process, out: Path) -> int:
    """SIGKILL ``process`` while one of its trials runs; returns that trial's number.

    A trial seen RUNNING may finish before a kill lands (CI once saw one COMPLETE by
    then), so the search and its workers are first frozen with SIGSTOP and the trial's
    state read again: only a trial still RUNNING while nothing can advance it is killed
    mid-run; otherwise they are thawed and the watch goes on. The kill goes to the search
    alone: its workers must die with it (their parent-death signal), which is checked."""
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if _running_trials(url, out):
            frozen = [process.pid] + [pid for pid in serving(out) if pid != process.pid]
            _signal(frozen, signal.SIGSTOP)
            time.sleep(0.3)  # a state write already sent reaches the server
            running = _running_trials(url, out)
            if running:
                process.kill()
                process.wait()
                assert wait_gone(serving(out), timeout=10) == []
                assert _state(url, running[0]) == "RUNNING"
                return running[0]
            _signal(frozen, signal.SIGCONT)
        time.sleep(0.02)
    process.kill()
    process.wait()
    seen = [(t.number, t.state.name, t.duration) for t in _study(url).trials]
    runs = sorted(run.name for run in (out / "runs").glob("trial_*"))
    raise AssertionError(f"no trial of the first machine was seen running: {seen}, {runs}")


def test_two_machines_share_a_postgres_study_and_survive_a_kill(tmp_path, postgres_url):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    # Heartbeats every 3 s: a trial silent for 6 s is its dead worker's (short enough to
    # wait for; long enough that a loaded machine's live workers are rarely taken for
    # dead, and when they are, their trial is re-tried once like the killed one).
    # Trials of 4 epochs on 16 structures (the shared command's 1 on 8 finish in about a
    # second on an idle machine, faster than the test can see one running and kill it).
    options = ("--storage", postgres_url, "--heartbeat", "3")
    options += ("--budget", "4", "--structures", "16")
    first, second = tmp_path / "first", tmp_path / "second"
    command = search_command(space, first, TRIALS, *options)
    doomed = start(command, tmp_path / "first.log")
    # The other machine starts once the designs' grid is enqueued (two commands that
    # enqueue at the same instant may both enqueue a design; see engine.py).
    _wait_for_line(doomed, tmp_path / "first.log", "running")
    survivor = start(search_command(space, second, TRIALS, *options), tmp_path / "second.log")
    killed = _kill_mid_trial(postgres_url, doomed, first)
    # The killed machine comes back while the other works: both run to the target.
    back = start(command, tmp_path / "first.log")
    assert survivor.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    assert back.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert serving(first) == serving(second) == []

    trials = _study(postgres_url).trials
    by_number = {t.number: t for t in trials}
    assert by_number[killed].state.name == "FAIL"  # failed by its stale heartbeat
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE", [
        (t.number, t.state.name, t.user_attrs.get("retry_of"), t.user_attrs.get("surplus"))
        for t in trials
    ]
    assert retries[0].params == by_number[killed].params  # the same design, once more
    counted = [t for t in trials if not t.user_attrs.get("surplus")]
    complete = [t for t in counted if t.state.name == "COMPLETE"]
    assert len(complete) == TRIALS
    assert len({tuple(sorted(t.params.items())) for t in complete}) == TRIALS
    assert {t.state.name for t in counted} == {"COMPLETE", "FAIL"}
    for failed in (t for t in counted if t.state.name == "FAIL"):  # killed, or taken for dead
        assert [t.user_attrs.get("retry_of") for t in trials].count(failed.number) == 1
    # Every finished trial's blueprint is on some machine, as the study has it.
    for trial in complete:
        name = f"trial_{trial.number:04d}.yaml"
        paths = [out / "trials" / name for out in (first, second)]
        written = [yaml.safe_load(p.read_text()) for p in paths if p.is_file()]
        assert written and all(blueprint == trial.user_attrs["blueprint"] for blueprint in written)
    for log in ("first.log", "second.log"):
        assert "Traceback" not in (tmp_path / log).read_text()
