"""The folder tree is the pipeline: imports flow one way (import-linter contract in
pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_import_layers_are_kept():
    # import-linter comes with the `test` extra; without it the contract cannot be read.
    pytest.importorskip(
        "importlinter", reason="import-linter is not installed (pip install -e '.[test]')"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; sys.argv=['lint-imports']; lint_imports_command()",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
