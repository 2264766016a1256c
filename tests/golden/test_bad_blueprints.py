"""Bad input: every file in tests/golden/bad/ is refused with a located message, exit 2.

The expected ``line:column`` and message fragment of each case are in
``tests/golden/bad_expected.yaml``. Each case runs ``geocompose verify FILE`` in-process
through ``main([...])``; one subprocess runs the whole directory to prove that the
real command line prints no traceback for any of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from geocompose.cli.main import main

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "golden" / "bad"
EXPECTED: dict[str, list[list]] = yaml.safe_load(
    (REPO / "tests" / "golden" / "bad_expected.yaml").read_text()
)
CASES = sorted(p.name for p in BAD.glob("*.yaml"))
PWNED = Path("/tmp/geocompose-pwned")  # what python_tag.yaml would create if it ran


def located_line(stderr: str, prefix: str) -> str:
    """The one stderr line that starts with ``prefix`` (``file:line:col: ``)."""
    lines = [line for line in stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"expected one line starting {prefix!r} in stderr:\n{stderr}"
    return lines[0]


def test_every_case_has_an_expectation_and_vice_versa():
    assert CASES, "no bad blueprints found"
    assert sorted(EXPECTED) == CASES


@pytest.mark.parametrize("case", CASES)
def test_refused_with_located_message(case, capsys):
    if case == "python_tag.yaml":
        PWNED.unlink(missing_ok=True)
    path = str(BAD / case)
    code = main(["verify", path, "--samples", "1"])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in out + err
    for line, column, fragment in EXPECTED[case]:
        found = located_line(err, f"{path}:{line}:{column}: ")
        assert fragment in found, f"{fragment!r} not in {found!r}"
    # One located paragraph per problem, nothing else on stderr.
    assert len(err.strip().splitlines()) == len(EXPECTED[case]), err
    assert "invalid" in out  # the summary table says so too
    if case == "python_tag.yaml":
        assert not PWNED.exists(), "the !!python tag was executed"


def test_whole_directory_in_a_subprocess_prints_no_traceback():
    env = {**os.environ, "COLUMNS": "200"}
    run = subprocess.run(
        [sys.executable, "-m", "geocompose", "verify", "tests/golden/bad", "--samples", "1"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    for case in CASES:
        for line, column, fragment in EXPECTED[case]:
            found = located_line(run.stderr, f"tests/golden/bad/{case}:{line}:{column}: ")
            assert fragment in found
    assert run.stdout.count("invalid") == len(CASES)
