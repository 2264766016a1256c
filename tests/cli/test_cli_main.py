"""The command line's frame: parsing, exit codes, error rendering, ``python -m``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import geocompose
from geocompose.cli import schema as schema_command
from geocompose.cli.main import build_parser, main
from geocompose.errors import (
    BlueprintError,
    BlueprintErrors,
    Location,
    StructureError,
    VerificationFailed,
)

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "knobs", "schema", "verify"):
        assert command in out


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"geocompose {geocompose.__version__}"


def test_no_command_prints_usage_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: geocompose" in capsys.readouterr().err


def test_bad_arguments_exit_2_without_traceback(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["info"])  # PATH is required (verify's are optional: --calculator)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: PATH" in err and "Traceback" not in err


def _raising(err: BaseException):
    def run(args):
        raise err

    return run


@pytest.mark.parametrize(
    ("error", "code", "text"),
    [
        (
            BlueprintError("must be > 0; got 0", Location("m.yaml", 3, 7), "graph.cutoff"),
            2,
            "m.yaml:3:7: graph.cutoff: must be > 0; got 0",
        ),
        (
            StructureError("atom 0 is Xe, which model 'm' does not know"),
            2,
            "atom 0 is Xe, which model 'm' does not know",
        ),
        (VerificationFailed("rotation: 1e-2 > 1e-9"), 1, "rotation: 1e-2 > 1e-9"),
    ],
)
def test_geocompose_errors_become_one_paragraph_and_an_exit_code(
    monkeypatch, capsys, error, code, text
):
    monkeypatch.setattr(schema_command, "run", _raising(error))
    assert main(["schema"]) == code
    out, err = capsys.readouterr()
    assert err.strip() == text
    assert out == ""


def test_several_blueprint_errors_are_all_printed(monkeypatch, capsys):
    errors = BlueprintErrors(
        [
            BlueprintError("unknown key 'a'", Location("m.yaml", 1, 1), "a"),
            BlueprintError("unknown key 'b'", Location("m.yaml", 2, 1), "b"),
        ]
    )
    monkeypatch.setattr(schema_command, "run", _raising(errors))
    assert main(["schema"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "m.yaml:1:1: a: unknown key 'a'",
        "m.yaml:2:1: b: unknown key 'b'",
    ]


def test_anything_else_is_an_internal_error_with_its_traceback_and_exit_3(monkeypatch, capsys):
    monkeypatch.setattr(schema_command, "run", _raising(RuntimeError("bug in geocompose")))
    assert main(["schema"]) == 3
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first == "geocompose: internal error (a bug in geocompose): RuntimeError: bug in geocompose"
    assert "Traceback (most recent call last)" in err and "_raising" not in first


def test_an_unwritable_output_path_is_bad_input_not_a_crash(monkeypatch, capsys):
    def write(args):
        Path("/proc/no-such-dir/out.json").write_text("{}")

    monkeypatch.setattr(schema_command, "run", write)
    assert main(["schema"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "geocompose: cannot use /proc/no-such-dir/out.json: No such file or directory"
    )


def test_an_os_error_that_names_no_file_stays_an_internal_error(monkeypatch, capsys):
    monkeypatch.setattr(schema_command, "run", _raising(OSError("socket went away")))
    assert main(["schema"]) == 3
    assert "internal error" in capsys.readouterr().err


def test_import_of_a_missing_module_is_a_user_error(capsys):
    assert main(["--import", "no_such_module_xyz", "schema"]) == 2
    err = capsys.readouterr().err
    assert "--import no_such_module_xyz: no module named 'no_such_module_xyz'" in err


@pytest.mark.parametrize(
    ("source", "raised"),
    [
        ("import no_such_dependency_xyz\n", "ModuleNotFoundError: No module named"),
        ("x = 1 / 0\n", "ZeroDivisionError: division by zero"),
    ],
)
def test_an_error_inside_a_user_module_shows_its_traceback_and_exits_2(
    tmp_path, monkeypatch, capsys, source, raised
):
    (tmp_path / "broken_blocks_xyz.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "broken_blocks_xyz", raising=False)
    assert main(["--import", "broken_blocks_xyz", "schema"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "broken_blocks_xyz.py" in err
    assert err.splitlines()[-1].startswith(
        f"geocompose: --import broken_blocks_xyz: the module raised {raised}"
    )
    assert "internal error" not in err


def test_help_states_the_exit_code_contract(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "0 ok; 1 a claim is violated or a job failed its own criterion; 2 bad input" in out
    assert "3 internal error" in out


def test_every_command_has_help_text():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        assert command.description, name
    assert all(action.help for action in sub._choices_actions)


def test_python_dash_m_runs_the_same_command_line():
    run = subprocess.run(
        [sys.executable, "-m", "geocompose", "knobs", "shnet"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2
    assert "did you mean 'schnet'?" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr
