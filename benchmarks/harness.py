"""The one timing harness every benchmark script uses.

What it guarantees, so that two implementations are compared fairly on a small,
shared machine:

* **Interleaved repetitions**: each repetition calls every contender once, in an order
  that alternates from one repetition to the next, so a change of machine load (other
  jobs, CPU frequency) hits all of them alike. Warm-up calls come first and are not
  timed (lazy initialisation, allocator growth, e3nn's code generation).
* **Median and spread**: each contender gets its median wall time and the spread of
  its samples (quartiles), plus its median CPU time (process time, all threads; other
  processes disturb it less than wall time).
* **One ratio convention**: ``ours / theirs`` everywhere (below 1: ours is faster).
* **Threads set explicitly** (:func:`set_threads`), and a header naming the machine
  (CPU model, cores), the package versions and the load average, with the load
  average again at the end (:func:`footer`): on a shared machine a figure without its
  load means little.

A contender that runs in another process (a peer code pinned to other versions, e.g.
mace-torch on e3nn 0.4.4) is a :class:`Worker`: the harness still interleaves it call
by call with ours, and the worker reports the times it measured itself.

This file imports nothing beyond the standard library at the top, so the worker side
(:func:`serve`) runs in any venv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version


@dataclass(frozen=True)
class Sample:
    """One call's wall and CPU seconds."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class Timing:
    """The samples of one contender; figures in milliseconds."""

    samples: tuple[Sample, ...]

    @property
    def median_ms(self) -> float:
        return 1e3 * statistics.median(s.wall for s in self.samples)

    @property
    def cpu_ms(self) -> float:
        return 1e3 * statistics.median(s.cpu for s in self.samples)

    @property
    def spread_ms(self) -> tuple[float, float]:
        """First and third quartile of the wall time (min and max under 4 samples)."""
        walls = sorted(1e3 * s.wall for s in self.samples)
        if len(walls) < 4:
            return walls[0], walls[-1]
        q1, _, q3 = statistics.quantiles(walls, n=4)
        return q1, q3

    def __str__(self) -> str:
        low, high = self.spread_ms
        return f"{self.median_ms:.2f} [{low:.2f}-{high:.2f}]"


def timed_call(fn: Callable[[], object]) -> Sample:
    """Time one call; a callable that times itself (a :class:`Worker` call) returns its
    own :class:`Sample`, which is used instead."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = fn()
    sample = Sample(time.perf_counter() - start, time.process_time() - start_cpu)
    return result if isinstance(result, Sample) else sample


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2
) -> dict[str, Timing]:
    """Time each named callable ``repeats`` times, interleaved, after ``warmup`` calls each.

    Repetition r calls the contenders in order when r is even and in reverse when odd,
    so none is always first (after another's allocations) or always last.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            samples[name].append(timed_call(fns[name]))
    return {name: Timing(tuple(samples[name])) for name in names}


def measure(fn: Callable[[], object], repeats: int, warmup: int = 1) -> Timing:
    """One callable alone (no contender): its timing after ``warmup`` calls."""
    return interleaved({"only": fn}, repeats, warmup)["only"]


def optimizer_step(
    loss: Callable[[], object], parameters: list, optimizer, clip: float
) -> Callable[[], None]:
    """One training step as the training benchmarks time it: ``loss()`` (a scalar
    tensor), its backward, gradient-norm clipping at ``clip`` and ``optimizer.step()``."""
    import torch

    def step() -> None:
        total = loss()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(parameters, clip)
        optimizer.step()

    return step


def profile_table(step, steps: int, rows: int) -> str:
    """torch.profiler over ``steps`` calls of ``step``: op calls per step and the top ops."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    # Top-level aten ops only would need the event tree; every recorded op is counted.
    calls = sum(e.count for e in events) / steps
    table = events.table(sort_by="self_cpu_time_total", row_limit=rows)
    return f"{calls:,.0f} recorded op calls per step\n{table}"


def ratio(ours: Timing, theirs: Timing) -> float:
    """``ours / theirs`` of the median wall times: below 1, ours is faster."""
    return ours.median_ms / theirs.median_ms


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (and OpenMP's for libraries that read it); returns
    the count in force. Our radius graph hands the same count to vesin."""
    import torch

    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def versions(packages: Iterable[str]) -> str:
    found = []
    for package in packages:
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} (not installed)")
    return ", ".join(found)


def header(title: str, packages: Iterable[str] = (), threads: int | None = None) -> str:
    """The lines every benchmark prints first: what, where, with which versions."""
    import torch

    threads = torch.get_num_threads() if threads is None else threads
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    packages = ["torch", "e3nn", "numpy", "vesin", "geocompose", *packages]
    return "\n".join(
        [
            f"# {title}",
            (
                f"machine: {cpu_model()}, {os.cpu_count()} cores ({usable} usable), "
                f"{platform.platform()}"
            ),
            f"python {platform.python_version()}; {versions(dict.fromkeys(packages))}",
            f"torch threads {threads}; load average {load_average()} at start",
        ]
    )


def footer() -> str:
    return f"load average {load_average()} at end"


def timing_note(repeats: int, warmup: int) -> str:
    return (
        f"median of {repeats} interleaved calls after {warmup} warm-up calls each; "
        "[q1-q3] spread; ratio = ours / theirs (below 1: ours faster)"
    )


# ---------------------------------------------------------------------------------
# A contender in another process (another venv).


REPLY = "@harness "
"""Prefix of the worker's reply lines: anything else on its stdout is a peer's print."""


class Worker:
    """A peer code run by :func:`serve` in a child process, called one call at a time.

    ``Worker(command)`` starts the child; ``worker.call(name)`` is a callable for the
    harness: each call asks the child to run its function ``name`` once and returns the
    :class:`Sample` the child measured. ``worker.info`` is what the child reported when
    ready (weights, edges, versions, ...).
    """

    def __init__(self, command: list[str]) -> None:
        # The peer's warnings (deprecations of its pinned versions) would drown the table.
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=env
        )
        self.info = self._reply()

    def _reply(self) -> dict:
        while True:
            line = self._process.stdout.readline()
            if not line:
                code = self._process.wait()
                raise SystemExit(f"benchmark worker exited ({code}) before replying")
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY) :])
            sys.stderr.write(line)  # a peer's own print, passed on

    def call(self, name: str) -> Callable[[], Sample]:
        def run() -> Sample:
            self._process.stdin.write(name + "\n")
            reply = self._reply()
            return Sample(reply["wall"], reply["cpu"])

        return run

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait(timeout=60)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self._process.poll() is None and exc[0] is not None:
            self._process.kill()
        self.close()


def serve(fns: dict[str, Callable[[], object]], info: dict, channel=None) -> None:
    """The child side of :class:`Worker`: report ``info``, then run the named function
    once per line read from stdin and reply with its time, until stdin closes.

    ``channel`` is the reply stream (default: stdout, which is then pointed at stderr
    so that a peer's prints cannot corrupt the replies).
    """
    if channel is None:
        channel, sys.stdout = sys.stdout, sys.stderr
    channel.write(REPLY + json.dumps(info) + "\n")
    channel.flush()
    for line in sys.stdin:
        sample = timed_call(fns[line.strip()])
        channel.write(REPLY + json.dumps({"wall": sample.wall, "cpu": sample.cpu}) + "\n")
        channel.flush()


def structures_worker(python: str, script: str, engine: str, atoms_by_name: dict,
                      folder: str, threads: int) -> Worker:  # fmt: skip
    """``script --engine ENGINE`` under a peer's venv ``python``, serving one call at a
    time on the same structures: written to an extxyz file in ``folder``, each named
    by its ``info["name"]``. (ASE is imported here, not at the top: see above.)"""
    import ase.io

    frames = []
    for name, atoms in atoms_by_name.items():
        atoms = atoms.copy()
        atoms.info["name"] = name
        frames.append(atoms)
    path = os.path.join(folder, "structures.extxyz")
    ase.io.write(path, frames, format="extxyz")
    return Worker([python, os.path.abspath(script), "--engine", engine,
                   "--structures-file", path, "--threads", str(threads)])  # fmt: skip


def step_against_peer(step, info: dict, frames, script: str, peer: str, args) -> None:
    """Our training ``step`` against the peer's: ``script --engine PEER`` under
    ``args.reference_python``, serving a ``step`` (and ``profile``) on the same ``frames``,
    interleaved call by call. Refuses graphs of different sizes; prints both weight counts,
    the step times and their ratio, and with ``args.profile`` both sides' profiles.
    ``info`` holds our ``edges`` and ``weights``. (ASE is imported here: see above.)"""
    import ase.io

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "batch.extxyz")
        ase.io.write(path, frames, format="extxyz")
        command = [args.reference_python, os.path.abspath(script), "--engine", peer,
                   "--structures-file", path, "--threads", str(args.threads),
                   "--profile-steps", str(args.profile_steps), "--rows", str(args.rows)]  # fmt: skip
        with Worker(command) as worker:
            if worker.info["edges"] != info["edges"]:
                raise SystemExit(f"{info['edges']} edges here, {worker.info['edges']} in {peer}")
            timing = interleaved({peer: worker.call("step"), "ours": step}, args.repeats,
                                 args.warmup)  # fmt: skip
            ours, theirs = timing["ours"], timing[peer]
            print(f"edges {info['edges']:,}; weights: geocompose {info['weights']:,}, "
                  f"{peer} {worker.info['weights']:,}")  # fmt: skip
            print(f"step ms [q1-q3]: {peer} {theirs}, ours {ours}; ours/{peer} "
                  f"{ratio(ours, theirs):.2f} (CPU {ours.cpu_ms / theirs.cpu_ms:.2f})")  # fmt: skip
            print(footer(), flush=True)
            if args.profile:
                worker.call("profile")()
                print("## geocompose training step, torch.profiler")
                print(profile_table(step, args.profile_steps, args.rows))


def peer_rows(atoms_by_name: dict, ours: dict, edges: dict, worker: Worker, peer: str,
              repeats: int, warmup: int) -> list[Row]:  # fmt: skip
    """Forward and forward+forces of every structure, ours (``ours["NAME/KIND"]``)
    interleaved with the peer's worker; refuses to compare graphs of different sizes."""
    rows = []
    for name, atoms in atoms_by_name.items():
        if edges[name] != worker.info["edges"][name]:
            raise SystemExit(f"{name}: {edges[name]} edges here, "
                             f"{worker.info['edges'][name]} in {peer}")  # fmt: skip
        for kind in ("forward", "forward+forces"):
            key = f"{name}/{kind}"
            timing = interleaved({peer: worker.call(key), "ours": ours[key]}, repeats, warmup)
            rows.append(Row(name, len(atoms), edges[name], kind, timing[peer], timing["ours"]))
    return rows


def peer_main(doc: str, script: str, peer: str, default_python: str, title: str,
              venv: str, structures: Callable[[], dict], ours_calls: Callable,
              serve_reference: Callable[[dict], None],
              weights_line: Callable[[dict, dict], str],
              profile: Callable[[dict], str]) -> None:  # fmt: skip
    """The command line of an ours-against-a-peer script (``mace.py``, ``nequip.py``):
    run as ``--engine PEER`` under the peer's venv it serves ``serve_reference``;
    otherwise it times ``ours_calls(atoms_by_name)`` (``"NAME/KIND"`` -> fn, and info
    with ``weights`` and ``edges``) against that worker, interleaved, and prints the
    header, ``weights_line(our info, the peer's info)``, the table and, with
    ``--profile``, ``profile(atoms_by_name)``. ``venv`` says what the peer's venv is."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--engine", choices=["both", peer], default="both")
    parser.add_argument("--structures-file", help="extxyz written by the parent run (internal)")
    parser.add_argument("--reference-python", default=default_python)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both engines")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--only", default="ethanol,cu64,cu512", help="comma-separated structure names"
    )
    parser.add_argument("--profile", action="store_true", help="profile geocompose on cu64")
    args = parser.parse_args()

    threads = set_threads(args.threads)
    if args.engine == peer:
        import ase.io

        frames = ase.io.read(args.structures_file, index=":")
        serve_reference({a.info["name"]: a for a in frames})
        return

    wanted = args.only.split(",")
    atoms_by_name = {k: v for k, v in structures().items() if k in wanted}
    print(header(title, [], threads))
    print(
        f"{peer}: this script under {args.reference_python} ({venv}), called one call "
        "at a time, interleaved with ours"
    )
    print(f"float32; {timing_note(args.repeats, args.warmup)}\n")
    ours, info = ours_calls(atoms_by_name)
    with tempfile.TemporaryDirectory() as folder:
        worker = structures_worker(args.reference_python, script, peer, atoms_by_name,
                                   folder, args.threads)  # fmt: skip
        with worker:
            rows = peer_rows(atoms_by_name, ours, info["edges"], worker, peer,
                             args.repeats, args.warmup)  # fmt: skip
    print(weights_line(info, worker.info))
    print(table(rows, peer))
    print(footer())
    if args.profile:
        print(profile(atoms_by_name))


# ---------------------------------------------------------------------------------
# The comparison table every ours-against-a-reference script prints.


@dataclass(frozen=True)
class Row:
    """One structure and pass: the reference's timing and ours."""

    structure: str
    atoms: int
    edges: int
    kind: str  # "forward", "forward+forces", ...
    theirs: Timing
    ours: Timing


def table(rows: Iterable[Row], reference: str) -> str:
    """Markdown table of rows: medians with spread, wall and CPU ratio ours / theirs."""
    lines = [
        (
            f"| structure | atoms | edges | pass | {reference} ms [q1-q3] | ours ms [q1-q3] "
            f"| ours/{reference} | CPU ours/{reference} |"
        ),
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.structure} | {row.atoms:,} | {row.edges:,} | {row.kind} | {row.theirs} "
            f"| {row.ours} | {ratio(row.ours, row.theirs):.2f} "
            f"| {row.ours.cpu_ms / row.theirs.cpu_ms:.2f} |"
        )
    return "\n".join(lines)


def energy_only(blueprint, model):
    """The same blueprint and weights as ``model`` without its forces readout, in eval
    mode: the 'forward' contender (energy alone, no autograd through positions)."""
    import copy

    import geocompose
    from geocompose.blueprint import read_blueprint

    if isinstance(blueprint, dict):
        raw = copy.deepcopy(blueprint)
    else:
        raw = read_blueprint(blueprint).blueprint.model_dump(mode="json")
    raw["readout"] = {k: v for k, v in raw["readout"].items() if k != "forces"}
    twin = geocompose.compile(raw, dtype=model.dtype, seed=0)
    twin.load_state_dict(model.state_dict())
    return twin.to(next(model.parameters()).device).eval()
