"""docs/getting-started.md cannot drift: its code runs here.

* the ```python blocks run in order in one namespace (the user block is registered,
  compiled into a model, run and verified; then a radial basis, a graph builder and a
  strategy are registered, verified and drawn by the property tests), then all are
  unregistered;
* the first ```yaml block is the blueprint the page calls ``tiny.yaml``: it compiles,
  and the misspelt variant gives the error text the page shows;
* every ``geocompose ...`` line in the ```bash blocks parses with the real parser;
* ``--import my_blocks`` makes the page's block usable from the command line.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

import geocompose
from geocompose.cli.main import build_parser, main
from geocompose.registry import REGISTRY, Kind

REPO = Path(__file__).resolve().parents[2]
PAGE = (REPO / "docs" / "getting-started.md").read_text(encoding="utf-8")
BLOCK_NAME = "distance_gate"
# The knobs of the section "A knob of any kind is one new file".
KNOBS = [(Kind.RADIAL, "hat"), (Kind.GRAPH, "shell"), (Kind.STRATEGY, "inversion_average")]


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", PAGE, flags=re.DOTALL | re.MULTILINE)


@pytest.fixture
def clean_registry():
    for kind, name in [(Kind.INTERACTION, BLOCK_NAME), *KNOBS]:
        REGISTRY.remove(kind, name)
    sys.modules.pop("my_blocks", None)
    yield
    for kind, name in [(Kind.INTERACTION, BLOCK_NAME), *KNOBS]:
        REGISTRY.remove(kind, name)
    sys.modules.pop("my_blocks", None)


def test_python_examples_run(clean_registry, capsys):
    code = blocks("python")
    assert len(code) == 3, "expected the block definition, its use, and the knob of each kind"
    namespace = {"__name__": "getting_started_example"}
    for source in code:
        # dont_inherit: this file's `from __future__ import annotations` must not leak in.
        exec(compile(source, "docs/getting-started.md", "exec", dont_inherit=True), namespace)  # noqa: S102
    assert REGISTRY.get(Kind.INTERACTION, BLOCK_NAME).builder.__name__ == "DistanceGateInteraction"
    assert [REGISTRY.get(kind, name).builder.__name__ for kind, name in KNOBS] == [
        "HatRadial",
        "ShellGraph",
        "InversionAverage",
    ]
    assert namespace["report"].passed
    assert "derived O(3)" in capsys.readouterr().out  # the example prints the summary


def test_the_blueprint_on_the_page_compiles_and_its_error_is_as_shown(
    tmp_path, monkeypatch, capsys
):
    tiny = blocks("yaml")[0]
    monkeypatch.chdir(tmp_path)
    Path("tiny.yaml").write_text(tiny)
    model = geocompose.compile("tiny.yaml")
    assert model.name == "tiny"
    # The page's `info` summary line is what the compiler says.
    assert model.trace.summary() in PAGE, (
        f"update the sample output in docs/getting-started.md to:\n{model.trace.summary()}"
    )

    Path("tiny.yaml").write_text(tiny.replace("type: schnet", "type: shnet"))
    assert main(["verify", "tiny.yaml"]) == 2
    shown = re.search(
        r"^(tiny\.yaml:\d+:\d+: .*? did you mean 'schnet'\?)", PAGE, flags=re.MULTILINE
    )
    assert shown, "the page shows the located error for `type: shnet`"
    assert capsys.readouterr().err.startswith(shown.group(1))


def test_shell_commands_on_the_page_parse():
    parser = build_parser()
    lines = [line for block in blocks("bash") for line in block.splitlines()]
    commands = [line.split("#")[0].split(">")[0].strip() for line in lines]
    commands = [c for c in commands if c.startswith("geocompose ")]
    assert len(commands) >= 8
    for command in commands:
        parser.parse_args(shlex.split(command)[1:])  # exits (fails the test) on a bad line


def test_the_block_can_be_imported_from_the_command_line(
    clean_registry, tmp_path, monkeypatch, capsys
):
    (tmp_path / "my_blocks.py").write_text(blocks("python")[0])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert main(["--import", "my_blocks", "knobs", BLOCK_NAME]) == 0
    out = capsys.readouterr().out
    assert f"interaction '{BLOCK_NAME}'" in out and "my_blocks.py:" in out
