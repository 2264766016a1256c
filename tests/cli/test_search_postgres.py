"""The many-machine path for real: a PostgreSQL server started by this test, two
``geocompose search --storage postgresql://...`` commands on it (as two machines would
run them, each with its own ``--out``), one killed with SIGKILL in the middle of a
trial. The other must finish the study: the killed trial failed by its stale heartbeat
and its design re-tried once, every design trained exactly once, nothing lost.

The server is Debian's ``postgresql`` package (``initdb`` + ``pg_ctl`` in a temporary
directory, on a free loopback port, as the ``postgres`` user when run as root, which
PostgreSQL refuses); the client is ``psycopg2-binary`` (the ``test`` extra). Skipped,
saying which is missing, only where they are not installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("optuna")
pytest.importorskip("geocompose.train")

from search_procs import DESIGNS, SPACE, search_command, serving, start, wait_gone


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
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} -c fsync=off"
    run(pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start")
    try:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="geocompose", dbname="postgres")
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE search")
        connection.close()
        yield f"postgresql+psycopg2://geocompose@127.0.0.1:{port}/search"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _study(url: str):
    import optuna

    return optuna.load_study(study_name="fault-search", storage=url)


def _state(url: str, number: int) -> str | None:
    trials = [t for t in _study(url).trials if t.number == number]
    return trials[0].state.name if trials else None


def _kill_mid_trial(url: str, command: list[str], out: Path, log: Path) -> int:
    """Start ``command`` and SIGKILL it while one of its trials runs; returns that
    trial's number (tries again, a fresh process, if a trial finished first)."""
    for _ in range(3):
        process = start(command, log)
        deadline, number = time.monotonic() + 300, None
        while number is None and process.poll() is None and time.monotonic() < deadline:
            for run in sorted((out / "runs").glob("trial_*")) if (out / "runs").is_dir() else []:
                candidate = int(run.name[-4:])
                if _state(url, candidate) == "RUNNING":
                    number = candidate
                    break
            time.sleep(0.02)
        process.kill()
        process.wait()
        assert wait_gone(serving(out), timeout=10) == []
        if number is not None and _state(url, number) == "RUNNING":
            return number
    pytest.fail("could not kill a worker in the middle of a trial in three tries")


def test_two_machines_share_a_postgres_study_and_survive_a_kill(tmp_path, postgres_url):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    options = ("--storage", postgres_url, "--heartbeat", "1")
    first, second = tmp_path / "first", tmp_path / "second"
    survivor = start(search_command(space, second, DESIGNS, *options), tmp_path / "second.log")
    # The other machine starts once the designs' grid is enqueued (two commands that
    # enqueue at the same instant may both enqueue a design; see engine.py).
    deadline = time.monotonic() + 300
    while "running" not in (tmp_path / "second.log").read_text():
        assert survivor.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    killed = _kill_mid_trial(
        postgres_url, search_command(space, first, DESIGNS, *options), first, tmp_path / "first.log"
    )
    assert survivor.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    assert serving(second) == []

    trials = _study(postgres_url).trials
    by_number = {t.number: t for t in trials}
    assert by_number[killed].state.name == "FAIL"  # failed by its stale heartbeat
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert retries[0].params == by_number[killed].params  # the same design, once more
    counted = [t for t in trials if not t.user_attrs.get("surplus")]
    complete = [t for t in counted if t.state.name == "COMPLETE"]
    assert len(complete) == DESIGNS
    assert len({tuple(sorted(t.params.items())) for t in complete}) == DESIGNS
    assert {t.state.name for t in counted} == {"COMPLETE", "FAIL"}
    assert all(t.state.name != "FAIL" or t.number == killed for t in counted)
    # The survivor's --out holds every finished trial's blueprint, the dead one's too.
    for trial in complete:
        path = second / "trials" / f"trial_{trial.number:04d}.yaml"
        assert yaml.safe_load(path.read_text()) == trial.user_attrs["blueprint"]
    log = (tmp_path / "second.log").read_text()
    assert "Traceback" not in log, log[-3000:]
