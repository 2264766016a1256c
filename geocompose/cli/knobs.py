"""geocompose knobs: list the registry, or show one knob in full.

Everything here is read from the registry: the knob's metadata (family, group, body
order, smoothness) and its params (name, type, default, constraints), taken from the
pydantic params model. So a block registered by user code shows up like a built-in::

    geocompose knobs                    # every knob, by kind
    geocompose knobs --kind interaction
    geocompose knobs schnet             # docstring, file:line and params of one knob
    geocompose knobs --markdown > docs/knobs.md   # regenerate the reference page
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import re
import sys
from pathlib import Path

from rich.table import Table
from rich.text import Text

import geocompose
from geocompose.blueprint import build_schema
from geocompose.cli.common import EXIT_OK, CommandError, console
from geocompose.cli.params import param_rows
from geocompose.registry import REGISTRY, Entry, Kind

__all__ = [
    "SLOTS",
    "add_arguments",
    "builtin_entries",
    "render_knobs_markdown",
    "run",
]

SLOTS: dict[Kind, str] = {
    Kind.GRAPH: "graph",
    Kind.NODE_EMBEDDING: "embedding.node",
    Kind.RADIAL: "embedding.radial",
    Kind.ENVELOPE: "embedding.envelope",
    Kind.ANGULAR: "embedding.angular",
    Kind.EDGE_EMBEDDING: "embedding.{radial,envelope,angular}",  # the three, evaluated together
    Kind.INTERACTION: "interactions[]",
    Kind.READOUT: "readout.<output>",
    Kind.STRATEGY: "symmetry.strategy",
}
"""Where in a blueprint each kind of knob is chosen (with ``type: <name>``)."""

_PACKAGE_ROOT = Path(geocompose.__file__).resolve().parent.parent


# ------------------------------------------------------------------ registry views


def builtin_entries(kind: Kind | None = None) -> list[Entry]:
    """Entries registered by geocompose itself (not by tests or user code)."""
    return [e for e in REGISTRY.entries(kind) if e.builder.__module__.startswith("geocompose.")]


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


def _flags(entry: Entry) -> str:
    flags = []
    if entry.periodic:
        flags.append("periodic")
    if entry.derivative:
        flags.append("derivative")
    if entry.exact is not None:
        flags.append("exact" if entry.exact else "approximate")
    return ", ".join(flags)


def _relative_source(entry: Entry) -> str:
    """The builder's file relative to the repository, without a line (docs must not churn)."""
    try:
        file = Path(inspect.getsourcefile(entry.builder) or "").resolve()
        return file.relative_to(_PACKAGE_ROOT).as_posix()
    except (TypeError, ValueError, OSError):
        return entry.builder.__module__


def _params_cell(entry: Entry) -> Text:
    lines = []
    for row in param_rows(entry.params):
        line = f"{row.name}: {row.type} = {row.default}"
        lines.append(line + (f"  ({row.constraints})" if row.constraints else ""))
    return Text("\n".join(lines) or "—")


def _kind_table(kind: Kind, entries: list[Entry]) -> Table:
    table = Table(
        title=f"{kind.value}  (blueprint: {SLOTS.get(kind, kind.value)})",
        show_lines=True,
        title_justify="left",
    )
    for column in ("name", "family", "group", "body order", "smooth", "flags", "params"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            e.name,
            e.family.value,
            e.group.value,
            "—" if e.body_order is None else str(e.body_order),
            _yes_no(e.smooth),
            _flags(e) or "—",
            _params_cell(e),
        )
    return table


def _params_table(entry: Entry) -> Table:
    table = Table(title="params", title_justify="left")
    for column in ("name", "type", "default", "constraints", "description"):
        table.add_column(column, overflow="fold")
    for row in param_rows(entry.params):
        table.add_row(row.name, row.type, row.default, row.constraints or "—", row.description)
    return table


def _find(name: str, kind: Kind | None) -> list[Entry]:
    found = [e for e in REGISTRY.entries(kind) if e.name == name]
    if found:
        return found
    names = sorted({e.name for e in REGISTRY.entries(kind)})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    where = f" of kind {kind.value}" if kind else ""
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise CommandError(f"no knob named {name!r}{where}{hint} (`geocompose knobs` lists them all)")


def _show(entry: Entry) -> None:
    out = console()
    out.print(
        Text(f"{entry.kind.value} '{entry.name}'  ({entry.builder.__qualname__})", style="bold")
    )
    out.print(
        Text(f"chosen with: {SLOTS.get(entry.kind, entry.kind.value)}: {{type: {entry.name}}}")
    )
    body_order = "—" if entry.body_order is None else entry.body_order
    meta = f"family {entry.family.value}; group {entry.group.value}; body order {body_order}"
    meta += f"; smooth {_yes_no(entry.smooth)}" + (f"; {_flags(entry)}" if _flags(entry) else "")
    out.print(Text(meta), soft_wrap=True)
    out.print(Text(f"defined at {entry.source}"), soft_wrap=True)
    out.print()
    out.print(Text(entry.doc or "(no docstring)"))
    out.print()
    out.print(_params_table(entry))


# ------------------------------------------------------------------ markdown


def _cell(text: str) -> str:
    return (text or " ").replace("|", "\\|").replace("\n", " ")


def render_knobs_markdown() -> str:
    """``docs/knobs.md``: every built-in knob with metadata, docstring and params.

    Deterministic (sorted by kind then name; source files without line numbers), so a
    test can compare it with the committed file. Regenerate with
    ``geocompose knobs --markdown > docs/knobs.md``.
    """
    lines = [
        "# Knobs",
        "",
        "<!-- GENERATED from the registry by `geocompose knobs --markdown > docs/knobs.md`.",
        "     Do not edit by hand: tests/cli/test_cli_knobs.py fails when this file is stale. -->",
        "",
        "Every choice a blueprint can make, read from the registry. A knob is chosen by",
        "writing `type: <name>` at its place in the blueprint; its params are the other keys",
        "of that mapping. `geocompose knobs NAME` prints the same, with the source line.",
        "",
        "| kind | blueprint key | knobs |",
        "| --- | --- | --- |",
    ]
    kinds = [k for k in Kind if builtin_entries(k)]
    for kind in kinds:
        names = ", ".join(
            f"[`{e.name}`](#{kind.value}-{e.name.replace('.', '')})" for e in builtin_entries(kind)
        )
        lines.append(f"| {kind.value} | `{SLOTS.get(kind, kind.value)}` | {names} |")
    lines += [
        "",
        "## Blueprint layout",
        "",
        "The keys of a blueprint file. A *knob* key takes a mapping with `type: <name>`",
        "(or just the name, for knobs without params); its kinds are listed below.",
        "",
        "| key | type | default | constraints | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in param_rows(build_schema()):
        type_ = _cell(r.type)
        for kind in kinds:
            type_ = re.sub(rf"\b{kind.value} knob", f"[{kind.value} knob](#{kind.value})", type_)
        lines.append(
            f"| `{r.name}` | {type_} | {_cell(r.default)} | {_cell(r.constraints)} "
            f"| {_cell(r.description)} |"
        )
    for kind in kinds:
        lines += [
            "",
            f"## {kind.value}",
            "",
            f"Chosen at `{SLOTS.get(kind, kind.value)}` in a blueprint.",
        ]
        for e in builtin_entries(kind):
            # An explicit anchor: names repeat across kinds (e.g. `none`).
            lines += [
                "",
                f'<a id="{kind.value}-{e.name.replace(".", "")}"></a>',
                "",
                f"### `{e.name}`",
                "",
            ]
            meta = [f"family: {e.family.value}", f"group: {e.group.value}"]
            if e.body_order is not None:
                meta.append(f"body order: {e.body_order}")
            if e.smooth is not None:
                meta.append(f"smooth: {_yes_no(e.smooth)}")
            if _flags(e):
                meta.append(_flags(e))
            meta.append(f"source: `{_relative_source(e)}` (`{e.builder.__qualname__}`)")
            lines += [" · ".join(meta), ""]
            lines += (e.doc or "(no docstring)").splitlines()
            rows = param_rows(e.params)
            lines.append("")
            if not rows:
                lines.append("No params besides `type`.")
                continue
            lines += [
                "| param | type | default | constraints | description |",
                "| --- | --- | --- | --- | --- |",
            ]
            lines += [
                f"| `{r.name}` | {_cell(r.type)} | {_cell(r.default)} | {_cell(r.constraints)} "
                f"| {_cell(r.description)} |"
                for r in rows
            ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


# ------------------------------------------------------------------ the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", nargs="?", help="show this knob in full")
    parser.add_argument("--kind", choices=[k.value for k in Kind], help="only knobs of this kind")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the generated reference page (docs/knobs.md) instead",
    )


def run(args: argparse.Namespace) -> int:
    kind = Kind(args.kind) if args.kind else None
    if args.markdown:
        sys.stdout.write(render_knobs_markdown())
        return EXIT_OK
    if args.name:
        for entry in _find(args.name, kind):
            _show(entry)
        return EXIT_OK
    out = console()
    for k in [kind] if kind else list(Kind):
        entries = list(REGISTRY.entries(k))
        if entries:
            out.print(_kind_table(k, entries))
    return EXIT_OK
