"""``GeometricModel.torch_compile``: compiled outputs equal eager ones.

The default run traces with ``aot_eager`` (dynamo capture and AOT autograd, the parts
geocompose's code must get right, in seconds); inductor's code generation is in the
slow test (minutes of C++ compilation on the 2-core machine).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import ase.build
import pytest
import torch

import geocompose

BLUEPRINT = {
    "name": "schnet-small",
    "symmetry": {"group": "O(3)"},
    "graph": {"type": "radius", "cutoff": 4.0},
    "embedding": {"species": ["Cu", "H"], "node": {"type": "learned", "features": 16},
                  "radial": {"type": "gaussian", "num": 8}, "envelope": {"type": "cosine"}},
    "interactions": [{"type": "schnet", "filters": 16, "repeat": 2}],
    "readout": {"energy": {"type": "sum"}, "forces": {"type": "gradient", "of": "energy"}},
}  # fmt: skip


def batches(count: int, dtype):
    cell = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True)
    cell.rattle(0.05, seed=0)
    bigger = cell * (2, 1, 1)  # another atom and edge count (dynamic shapes)
    bigger.rattle(0.05, seed=1)
    return [geocompose.Batch.from_ase(a, dtype=dtype) for a in (cell, bigger)][:count]


def assert_compiled_equals_eager(
    backend: str, sizes: int, dtype, rtol: float, atol: float, blueprint=BLUEPRINT
):
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager = geocompose.compile(blueprint, dtype=dtype, seed=0).eval()
    compiled = geocompose.compile(blueprint, dtype=dtype, seed=0).eval()
    assert compiled.torch_compile(backend=backend) is compiled
    for batch in batches(sizes, dtype):
        want, got = eager(batch), compiled(batch.replace())
        for name in ("energy", "forces"):
            torch.testing.assert_close(got[name], want[name], rtol=rtol, atol=atol)
    # The compiled path really ran: dynamo captured graphs (an eager fallback would not).
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1


def test_compiled_model_equals_eager_aot_eager():
    # Tracing only: the same kernels in the same order, so float64 agrees to round-off.
    assert_compiled_equals_eager("aot_eager", 1, torch.float64, rtol=1e-10, atol=1e-12)


@pytest.mark.slow  # 1-7 min on the shared 2-core machine: inductor compiles C++ with gcc
@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("g++") is None,
                    reason="inductor on CPU needs a C++ compiler (gcc), not on this machine")  # fmt: skip
def test_compiled_model_equals_eager_inductor():
    # The shipped SchNet in float32 on one thread, as benchmarks/schnet.py --compile
    # runs it: with torch 2.13 and 2 threads, inductor's C++ codegen fails (an
    # AssertionError generating the atomic-add scatter of the aggregation). Fused
    # kernels reorder sums: float32 tolerances.
    shipped = Path(__file__).parents[3] / "blueprints" / "schnet.yaml"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert_compiled_equals_eager("inductor", 2, torch.float32, 1e-4, 1e-5, blueprint=shipped)
    finally:
        torch.set_num_threads(threads)


def test_inductor_with_more_threads_is_refused_in_one_line():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = geocompose.compile(BLUEPRINT, seed=0)
        with pytest.raises(geocompose.GeocomposeError, match="set_num_threads"):
            model.torch_compile()
        model.torch_compile(backend="aot_eager")  # tracing only: any thread count
    finally:
        torch.set_num_threads(threads)
