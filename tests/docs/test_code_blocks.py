"""The README's and docs' code blocks cannot drift: they run here.

Every fenced block of ``README.md`` and ``docs/**/*.md`` is collected, in file order:

* ```python blocks are executed, from the repository root, in one namespace per file;
* ```yaml blocks that are blueprints (they have ``name`` and ``graph``) compile;
* in ```bash blocks, every ``geocompose ...`` command (continuation lines joined) parses
  with the real parser, then runs in-process through ``main([...])`` in a scratch
  directory that links the repository's ``blueprints/``, ``examples/``, ``geocompose/``
  and ``tests/``; it must exit 0, or the code a trailing ``# exit N`` comment states.
  Lines that are not ``geocompose`` commands (pip, python, torchrun) are not run.

A block may be marked on the line just before its fence, with a reason:

* ``<!-- docs-test: slow: REASON -->``: deliberately long (training, a search); its
  commands are parsed in the default run and run under ``-m slow``;
* ``<!-- docs-test: parse-only: REASON -->``: commands are parsed, never run (it installs
  packages);
* ``<!-- docs-test: skip: REASON -->``: a fragment that cannot run alone.

``docs/getting-started.md`` has its own, finer test (tests/cli/test_getting_started.py)
and is left to it.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

import geocompose
from geocompose.cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
COVERED_ELSEWHERE = {REPO / "docs" / "getting-started.md"}
LINKED = ("blueprints", "examples", "geocompose", "tests")
MODES = ("slow", "parse-only", "skip")

_FENCE = re.compile(
    r"^(?:<!-- docs-test: (?P<mode>[a-z-]+): (?P<reason>.+?) -->\n)?"
    r"```(?P<lang>[a-z]*)\n(?P<body>.*?)^```",
    flags=re.DOTALL | re.MULTILINE,
)
_EXIT = re.compile(r"#\s*exit (\d)")


@dataclass(frozen=True)
class CodeBlock:
    page: Path
    line: int
    language: str
    body: str
    mode: str | None
    reason: str | None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}:{self.language}"


def collect() -> list[CodeBlock]:
    blocks = []
    for page in PAGES:
        if page in COVERED_ELSEWHERE:
            continue
        text = page.read_text(encoding="utf-8")
        for found in _FENCE.finditer(text):
            line = text.count("\n", 0, found.start("lang")) + 1
            blocks.append(
                CodeBlock(
                    page,
                    line,
                    found["lang"],
                    found["body"],
                    found["mode"],
                    found["reason"],
                )
            )
    return blocks


BLOCKS = collect()
RUNNABLE = [b for b in BLOCKS if b.language in ("python", "bash", "yaml") and b.mode != "skip"]


def commands(body: str) -> list[tuple[list[str], int, str | None]]:
    """``(argv after 'geocompose', expected exit code, stdout file)`` per command line."""
    joined = re.sub(r"\\\n\s*", " ", body)
    found = []
    for line in joined.splitlines():
        code, _, comment = line.partition("#")
        expected = _EXIT.search("#" + comment) if comment else None
        for part in re.split(r"&&|;", code):  # `pip install ... && geocompose verify ...`
            command, _, redirect = part.partition(">")
            words = shlex.split(command)
            if not words or words[0] != "geocompose" or "..." in words:
                continue  # not a geocompose command, or an elided one ("geocompose search ...")
            code_ = int(expected.group(1)) if expected else 0
            found.append((words[1:], code_, redirect.strip() or None))
    return found


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory):
    """One scratch directory per page, so a page's later blocks see its earlier outputs."""
    made: dict[Path, Path] = {}

    def workdir(page: Path) -> Path:
        if page not in made:
            made[page] = tmp_path_factory.mktemp(page.stem)
            for name in LINKED:
                (made[page] / name).symlink_to(REPO / name)
        return made[page]

    return workdir


@pytest.fixture(scope="module")
def namespaces():
    return {}


def test_every_marker_is_known_and_says_why():
    marked = [b for b in BLOCKS if b.mode is not None]
    assert marked, "expected the long blocks to be marked"
    for block in marked:
        assert block.mode in MODES, f"{block.id}: unknown docs-test mode {block.mode!r}"
        assert len(block.reason.split()) >= 3, f"{block.id}: say why the block is {block.mode}"


def test_the_pages_have_runnable_blocks():
    languages = {b.language for b in RUNNABLE if b.mode is None}
    assert {"python", "bash", "yaml"} <= languages
    assert all(commands(b.body) for b in RUNNABLE if b.language == "bash"), (
        "a bash block without a geocompose command: drop it or mark it skip"
    )


def test_every_geocompose_command_parses():
    parser = build_parser()
    for block in (b for b in BLOCKS if b.language == "bash"):
        for argv, _, _ in commands(block.body):
            try:
                parser.parse_args(argv)
            except SystemExit as exit_:  # pragma: no cover - only on a stale page
                pytest.fail(f"{block.id}: `geocompose {' '.join(argv)}` does not parse ({exit_})")


def _params(blocks):
    marks = {"slow": [pytest.mark.slow]}
    return [pytest.param(b, id=b.id, marks=marks.get(b.mode, [])) for b in blocks]


@pytest.mark.parametrize("block", _params(b for b in RUNNABLE if b.mode != "parse-only"))
def test_code_block_runs(block, workdirs, namespaces, monkeypatch, capsys):
    if block.language == "python":
        monkeypatch.chdir(REPO)
        namespace = namespaces.setdefault(block.page, {"__name__": f"docs_{block.page.stem}"})
        code = compile(block.body, f"{block.id}", "exec", dont_inherit=True)
        exec(code, namespace)  # noqa: S102 - the page's own example
    elif block.language == "yaml":
        if not {"name:", "graph:"} <= {w for w in block.body.split() if w.endswith(":")}:
            pytest.skip("not a blueprint")
        path = workdirs(block.page) / f"block_{block.line}.yaml"
        path.write_text(block.body)
        assert geocompose.compile(path) is not None
    else:
        monkeypatch.chdir(workdirs(block.page))
        for argv, expected, stdout_file in commands(block.body):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(argv)
            err = capsys.readouterr().err
            shown = f"`geocompose {' '.join(argv)}`"
            assert code == expected, f"{block.id}: {shown} exited {code}, not {expected}:\n{err}"
            assert "Traceback" not in err, f"{block.id}: {shown}:\n{err}"
            if stdout_file:
                Path(stdout_file).write_text(out.getvalue())


def test_commands_are_read_as_a_shell_would_split_them():
    body = (
        "pip install x && geocompose verify blueprints/\n"
        "geocompose knobs shnet   # exit 2: did you mean\n"
        "geocompose train a.yaml \\\n    data.extxyz --epochs 1\n"
        "geocompose schema > out.json\n"
        "geocompose search ... --best\n"
        "python examples/md_nve.py run.pt\n"
    )
    assert commands(body) == [
        (["verify", "blueprints/"], 0, None),
        (["knobs", "shnet"], 2, None),
        (["train", "a.yaml", "data.extxyz", "--epochs", "1"], 0, None),
        (["schema"], 0, "out.json"),
    ]


def test_a_stale_command_on_a_page_would_fail(tmp_path, monkeypatch):
    """The harness is not vacuous: a command whose stated exit code is wrong fails it."""
    page = tmp_path / "stale.md"
    block = CodeBlock(page, 1, "bash", "geocompose knobs shnet  # exit 0\n", None, None)
    monkeypatch.chdir(tmp_path)
    argv, expected, _ = commands(block.body)[0]
    assert main(argv) != expected
