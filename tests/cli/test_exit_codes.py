"""The exit-code contract through the real console script (a subprocess each).

0 ok, 1 a claim violated, 2 bad input, 3 internal error: one run per code, so the
codes are proven where users and CI see them, not only through ``main([...])``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

LEAKY_BLOCK = textwrap.dedent(
    '''
    """A planted defect: adds the summed x-components of edge vectors while claiming O(3)."""
    from typing import Literal

    from geocompose.nn.block import Block
    from geocompose.nn.interaction.base import InteractionParams
    from geocompose.nn.ops.message import EdgeView, aggregate
    from geocompose.registry import Group, Kind, register
    from geocompose.types import Signature
    from geocompose.types import fields as F


    class XLeakParams(InteractionParams):
        type: Literal["x_leak_exit_code"] = "x_leak_exit_code"


    @register(Kind.INTERACTION)
    class XLeakInteraction(Block):
        Params = XLeakParams

        @classmethod
        def signature(cls, params, upstream, ctx):
            reads = {n: upstream[n] for n in (F.NODE_FEATURES, F.EDGE_VECTORS, F.EDGE_INDEX)}
            return Signature(
                reads=reads, writes={F.NODE_FEATURES: reads[F.NODE_FEATURES]}, guarantee=Group.O3
            )

        def forward(self, state):
            leak = aggregate(state[F.EDGE_VECTORS][:, :1], EdgeView.from_state(state))
            return {F.NODE_FEATURES: state[F.NODE_FEATURES] + leak}
    '''
)

CRASHING_MODULE = textwrap.dedent(
    '''
    """Makes `geocompose schema` crash the way a bug in geocompose would."""
    import geocompose.cli.schema


    def json_schema():
        raise RuntimeError("planted bug")


    geocompose.cli.schema.json_schema = json_schema
    '''
)

BLUEPRINT = textwrap.dedent(
    """
    name: leaky
    symmetry: {group: O(3), strategy: built_in}
    graph: {type: radius, cutoff: 4.0}
    embedding:
      species: [H, C]
      node: {type: learned, features: 4}
      radial: {type: gaussian, num: 4}
    interactions:
      - {type: x_leak_exit_code}
    readout:
      energy: {type: sum, hidden: [4]}
    """
)


def geocompose(*args: str, cwd: Path) -> subprocess.Popen:
    """The console script started on ``args``; its result is :func:`finished`'s."""
    script = shutil.which("geocompose")
    command = [script] if script else [sys.executable, "-m", "geocompose"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [*command, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def finished(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "leaky_blocks.py").write_text(LEAKY_BLOCK)
    (tmp_path / "crashing_module.py").write_text(CRASHING_MODULE)
    (tmp_path / "leaky.yaml").write_text(BLUEPRINT)
    return tmp_path


def test_console_script_exit_codes(workdir):
    # The four commands are independent: started together, they share the import time
    # (most of each one's cost) across the machine's cores.
    started = [
        geocompose("schema", cwd=workdir),
        geocompose("--import", "leaky_blocks", "verify", "leaky.yaml", "--samples", "1", cwd=workdir),
        geocompose("verify", "leaky.yaml", cwd=workdir),  # the block is not imported
        geocompose("--import", "crashing_module", "schema", cwd=workdir),
    ]  # fmt: skip
    try:
        ok, violated, bad, crash = [finished(process) for process in started]
    finally:  # a command that hung past its timeout is not left behind
        for process in started:
            process.kill()
            process.wait()
    assert ok.returncode == 0, ok.stderr
    assert '"title": "geocompose blueprint"' in ok.stdout

    assert violated.returncode == 1, violated.stdout + violated.stderr
    assert "claim violated" in violated.stdout and "Traceback" not in violated.stderr

    assert bad.returncode == 2
    assert bad.stderr.startswith("leaky.yaml:10:") and "Traceback" not in bad.stderr

    assert crash.returncode == 3
    assert crash.stderr.startswith(
        "geocompose: internal error (a bug in geocompose): RuntimeError: planted bug"
    )
    assert "Traceback (most recent call last)" in crash.stderr
