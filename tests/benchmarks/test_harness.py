"""benchmarks/harness.py: interleaving, the ratio convention, and the worker protocol."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).parents[2] / "benchmarks" / "harness.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules["harness"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("harness", None)


def test_calls_are_interleaved_in_alternating_order(harness):
    order = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    timings = harness.interleaved(fns, repeats=4, warmup=1)
    assert order == ["a", "b"] + ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert all(len(t.samples) == 4 for t in timings.values())


def test_ratio_is_ours_over_theirs_and_spread_brackets_the_median(harness):
    fast = harness.Timing(tuple(harness.Sample(w, w) for w in (0.001, 0.002, 0.003, 0.004)))
    slow = harness.Timing(tuple(harness.Sample(2 * s.wall, s.cpu) for s in fast.samples))
    assert harness.ratio(fast, slow) == pytest.approx(0.5)
    low, high = fast.spread_ms
    assert low <= fast.median_ms <= high
    row = harness.Row("x", 1, 2, "forward", theirs=slow, ours=fast)
    assert "| 0.50 | 1.00 |" in harness.table([row], "ref")


def test_a_worker_in_another_process_is_called_one_call_at_a_time(harness, tmp_path):
    child = tmp_path / "child.py"
    child.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(HARNESS.parent)!r})\n"
        "import harness\n"
        "print('noise from a peer')\n"  # must not reach the reply channel
        "harness.serve({'sleep': lambda: time.sleep(0.01)}, {'weights': 7})\n"
    )
    with harness.Worker([sys.executable, str(child)]) as worker:
        assert worker.info == {"weights": 7}
        timing = harness.measure(worker.call("sleep"), repeats=3, warmup=1)
    assert len(timing.samples) == 3 and timing.median_ms >= 10


def test_the_header_names_machine_versions_and_load(harness):
    text = harness.header("title", ["torch_geometric"], threads=1)
    assert "cores" in text and "torch " in text and "load average" in text
    assert "load average" in harness.footer()
