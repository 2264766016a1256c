"""A calculator in another Python, through a worker process: the same report as in
process, one-line refusals, crashes that are never verdicts, and no worker outliving
its command.

The worker runs under this test's own Python (EMT is here); the mace-torch peer needs
its own virtual environment (/work/venvs/mace, see docs/verification.md) and its test
skips, saying so, where that does not exist (CI has none).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.calculators.emt import EMT
from search_procs import alive, wait_gone

from geocompose.cli.main import main
from geocompose.verification import Verdict, groups, verify
from geocompose.verification.actions import transform_batch
from geocompose.verification.calculator import CalculatorRun, batch_to_atoms, calculator_subject
from geocompose.verification.engine import draw_sample
from geocompose.verification.remote import (
    RemoteCalculator,
    RemoteCalculatorError,
)

ROOT = Path(__file__).parents[2]
MACE_PYTHON = Path("/work/venvs/mace/bin/python")
SPECIES = ["Cu", "Al", "Ni"]
ROUNDING = 1e-12  # float64 errors below this are rounding: where they peak is noise

PEERS = """\
import os, sys
from ase.calculators.emt import EMT

print("a factory module that prints on import")  # must not corrupt the protocol


class Noisy(EMT):
    def calculate(self, *args, **kwargs):
        print("noise on stdout")
        os.write(1, b"noise on fd 1\\n")
        super().calculate(*args, **kwargs)


class Raising(EMT):
    def calculate(self, *args, **kwargs):
        raise FloatingPointError("planted: the model blew up")


class Dying(EMT):
    def calculate(self, *args, **kwargs):
        print("last words", file=sys.stderr, flush=True)
        os._exit(7)


def clean():
    loaded = sorted(name for name in sys.modules if name.split(".")[0] == "geocompose")
    if loaded:
        raise ImportError(f"the worker imported {loaded}")
    return EMT()


def slow(seconds):
    import time
    print(os.getpid(), file=open(os.environ["WORKER_PID_FILE"], "w"), flush=True)
    time.sleep(seconds)
    return EMT()
"""


@pytest.fixture
def peers(tmp_path, monkeypatch):
    """A user's module of planted calculators, importable from the current directory."""
    (tmp_path / "planted_peers.py").write_text(PEERS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_emt_through_a_worker_gives_the_in_process_results_exactly():
    near = CalculatorRun(EMT())
    with RemoteCalculator("ase.calculators.emt:EMT", sys.executable) as remote:
        assert remote.worker["calculator"] == "EMT" and alive(remote.pid)
        subject = calculator_subject(remote, species=SPECIES)
        far = CalculatorRun(remote)
        sample = draw_sample(subject, 2, 0)
        for batch in (
            sample.batch,
            transform_batch(sample.batch, groups.haar_rotation(sample.gen)),
        ):
            ours, theirs = far(batch), near(batch)
            assert all(torch.equal(ours[k], theirs[k]) for k in ours), "results differ"
        for atoms in batch_to_atoms(sample.batch):
            if atoms.pbc.all():
                assert np.array_equal(far.stress(atoms.copy()), near.stress(atoms.copy()))
        report = verify(subject, samples=1)
    # Same verdicts, same worst case; the figures agree to rounding only, as two
    # in-process runs do: D(R) is a least-squares solution whose last bit varies
    # between calls (measured: 1.1e-16 on a 1o block). Where the worst error is itself
    # rounding, which structure holds it is a coin toss (CI saw "forces on cell 0"
    # against "forces on molecule 0" for a reflection at ~1e-16), so the place is
    # compared only where the error stands clear of it.
    again = verify(calculator_subject(EMT(), species=SPECIES), samples=1)
    assert report.passed and again.passed, report.text()
    for ours, theirs in zip(report.checks, again.checks, strict=True):
        assert (ours.name, ours.verdict) == (theirs.name, theirs.verdict)
        if ours.error is None or ours.error > ROUNDING:
            assert ours.detail == theirs.detail, ours.name
        if ours.error is not None:
            assert abs(ours.error - theirs.error) < 1e-15 and abs(ours.mean - theirs.mean) < 1e-15
    assert not alive(remote.pid), "close() left the worker running"


def test_the_cli_drives_a_printing_calculator_in_another_interpreter(peers, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = peers / "noisy.json"
    argv = ["verify", "--python", sys.executable, "--calculator", "planted_peers:Noisy"]
    assert main([*argv, "--species", "Cu", "--samples", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())["reports"][0]["report"]
    assert report["name"].startswith(f"Noisy (python {sys.version.split()[0]} {sys.executable}")
    assert {c["name"]: c["verdict"] for c in report["checks"]}["rotation"] == "pass"


def test_the_worker_imports_nothing_of_geocompose(peers):
    with RemoteCalculator("planted_peers:clean") as remote:
        assert remote.worker["calculator"] == "EMT"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--calculator", "planted_peers:Nope"], "planted_peers has no callable 'Nope'"),
        (["--calculator", "no_such_module:X"], "no module named 'no_such_module'"),
        (["--calculator", "planted_peers:slow", "--kwargs", '{"minutes": 1}'], "TypeError"),
        (["--calculator", "planted_peers:Noisy", "--kwargs", "[1]"], "JSON object"),
        (["--calculator", "nocolon"], "write MODULE:FACTORY"),
        ([], "--python runs a --calculator"),
    ],
)
def test_a_factory_the_worker_cannot_make_exits_2_in_one_line(peers, capsys, argv, message):
    assert main(["verify", "--python", sys.executable, *argv, "--species", "Cu"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_an_interpreter_that_cannot_run_exits_2(peers, capsys):
    argv = ["verify", "--python", str(peers / "no-python"), "--calculator", "planted_peers:Noisy"]
    assert main([*argv, "--species", "Cu"]) == 2
    assert "cannot be run (No such file or directory)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "factory, said",
    [("Raising", "FloatingPointError: planted: the model blew up"), ("Dying", "last words")],
)
def test_a_calculator_that_crashes_is_an_internal_error_not_a_verdict(peers, capsys, factory, said):
    remote = RemoteCalculator(f"planted_peers:{factory}")
    with remote, pytest.raises(RemoteCalculatorError, match=said):
        verify(calculator_subject(remote, species=["Cu"]), samples=1)
    assert not alive(remote.pid), "the worker was left running"
    argv = ["verify", "--python", sys.executable, "--calculator", f"planted_peers:{factory}"]
    assert main([*argv, "--species", "Cu", "-q"]) == 3
    assert said in capsys.readouterr().err


def test_a_killed_command_leaves_no_worker(peers):
    pid_file = peers / "worker.pid"
    command = [
        sys.executable, "-m", "geocompose", "verify", "--python", sys.executable,
        "--calculator", "planted_peers:slow", "--kwargs", '{"seconds": 600}', "--species", "Cu",
    ]  # fmt: skip
    env = {**os.environ, "WORKER_PID_FILE": str(pid_file), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the worker never started its factory"
        time.sleep(0.1)
    worker = int(pid_file.read_text())
    assert alive(worker)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert wait_gone([worker], timeout=5) == [], "the worker outlived its killed command"


@pytest.mark.skipif(
    not MACE_PYTHON.exists(),
    reason=f"no mace-torch environment at {MACE_PYTHON} (made by hand, see "
    "docs/verification.md; CI has none)",
)
def test_a_mace_torch_model_holds_every_claim_it_makes(monkeypatch):
    """About 20 s (load 8 on 2 cores): building the model, then the default battery."""
    kwargs = {"seed": 0}
    factory = "benchmarks.peers.mace_calculator:mace_calculator"
    monkeypatch.chdir(ROOT)
    with RemoteCalculator(factory, str(MACE_PYTHON), kwargs) as remote:
        assert remote.worker["calculator"] == "MACECalculator"
        subject = calculator_subject(
            remote, species=["H", "C", "O", "Cu"], cutoff=5.0, reach=5.0, smooth=True
        )
        report = verify(subject, samples=1)
    assert report.passed, report.text()
    rows = {c.name: c for c in report.checks}
    for name in ("rotation", "reflection", "translation", "locality", "extensivity"):
        assert rows[name].error < 1e-12, report.text()
    assert rows["stress"].verdict is Verdict.PASS and rows["conservative forces"].error < 1e-6
