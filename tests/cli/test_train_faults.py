"""Fault injection: ``geocompose train`` killed with SIGKILL at random points, resumed.

A real ``geocompose train`` process (a tiny stochastic-frame-averaging model, so its
random draws are exercised too) is killed -9 at seeded random moments of its training
and resumed each time, then run to the end. The run must end exactly where an
uninterrupted one does: the same weights, averaged weights and best checkpoint bit for
bit, one metrics row per epoch with the same values, no temporary file left, and no
process of the run left alive after each kill. Bounded: five short processes.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ase.io import read, write

from geocompose.cli.main import main
from geocompose.train import load_checkpoint

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"
sys.path.insert(0, str(ROOT / "tests" / "unit" / "train"))
from train_cases import tiny_stochastic  # noqa: E402

EPOCHS = 12
KILL_SEEDS = (11, 12, 13)
TIMING = {"time_s", "structures_per_s"}
DEADLINE_S = 120  # per process: a hung run fails the test instead of hanging it


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    (root / "sfa.yaml").write_text(
        yaml.safe_dump(tiny_stochastic("stochastic_frame_averaging"))
    )
    write(root / "cu.extxyz", read(SAMPLE, index=":8"), format="extxyz")
    return root


def command(inputs: Path, out: Path, resume: bool) -> list[str]:
    argv = [sys.executable, "-m", "geocompose", "train", str(inputs / "sfa.yaml")]
    argv += [str(inputs / "cu.extxyz"), "--out", str(out), "--epochs", str(EPOCHS)]
    argv += ["--batch-atoms", "64", "--valid-fraction", "0.25", "--dtype", "float64"]
    argv += ["--lr", "5e-3", "--no-progress"]
    return argv + (["--resume"] if resume else [])


def environment() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # One thread in every process: the same kernels, so runs can be compared bit for bit.
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def start(inputs: Path, out: Path) -> subprocess.Popen:
    resume = (out / "last.pt").is_file()  # killed before its first checkpoint: start again
    return subprocess.Popen(
        command(inputs, out, resume),
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def rows_written(out: Path) -> int:
    try:
        return max(len((out / "metrics.csv").read_text().splitlines()) - 1, 0)
    except FileNotFoundError:
        return 0


def processes_of(out: Path) -> list[int]:
    """Live processes whose command line names ``out`` (the run and anything it started,
    even reparented after its parent died)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile
            continue
        if str(out).encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.is_file() else []


def table(out: Path) -> list[dict[str, str]]:
    with (out / "metrics.csv").open() as handle:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(handle)]


def finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 0, err


@pytest.mark.skipif(not Path("/proc/self/cmdline").is_file(), reason="needs Linux /proc")
def test_kill_minus_9_at_random_points_then_resume_is_exact(inputs, tmp_path):
    reference = tmp_path / "reference"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the subprocesses (OMP_NUM_THREADS=1)
    try:  # uninterrupted, in this process (saves a start-up)
        assert main(command(inputs, reference, resume=False)[3:]) == 0
    finally:
        torch.set_num_threads(threads)

    out = tmp_path / "killed"
    kills = 0
    for seed in KILL_SEEDS:
        rng = np.random.default_rng(seed)
        process = start(inputs, out)
        done = rows_written(out)
        target = int(rng.integers(done + 1, EPOCHS - 1)) if done + 1 < EPOCHS - 1 else done
        deadline = time.monotonic() + DEADLINE_S
        while rows_written(out) < target and process.poll() is None:
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.25)))  # somewhere in the next epoch
        if process.poll() is not None:  # finished before the kill: nothing to resume
            break
        children = children_of(process.pid)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=DEADLINE_S)
        kills += 1
        time.sleep(0.05)
        assert processes_of(out) == [], "a process of the killed run is still alive"
        assert not any(Path(f"/proc/{c}").exists() for c in children), children
    assert kills >= 2, f"only {kills} kill(s) landed before the run ended"
    finish(start(inputs, out))

    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"
    epochs = [int(r["epoch"]) for r in table(out)]
    assert epochs == list(range(1, EPOCHS + 1)), epochs
    assert table(out) == table(reference)
    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(reference / name), load_checkpoint(out / name)
        assert a["epoch"] == b["epoch"], name
        for key, value in a["weights"].items():
            assert torch.equal(value, b["weights"][key]), f"{name}: {key}"
        for key, value in a["ema"]["shadow"].items():
            assert torch.equal(value, b["ema"]["shadow"][key]), f"{name}: ema {key}"
