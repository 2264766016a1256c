"""geocompose info: compile a blueprint and show its type trace and blocks.

Prints the type trace (what each block reads and writes, with irreps, weights and the
group it guarantees), the summary (claimed and derived group, smoothness, outputs),
and each built block's repr. ``--graph`` also writes the data flow as Graphviz DOT
(``FILE.dot``) or draws it with matplotlib (``FILE.png``, needs ``geocompose[draw]``)::

    geocompose info blueprints/schnet.yaml --graph schnet.dot
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.text import Text

import geocompose
from geocompose.cli.common import EXIT_OK, CommandError, console

__all__ = ["GRAPH_FORMATS", "add_arguments", "run", "write_graph"]

GRAPH_FORMATS = (".dot", ".png")


def _graph_file(value: str) -> Path:
    path = Path(value)
    if path.suffix.lower() not in GRAPH_FORMATS:
        raise argparse.ArgumentTypeError(
            f"{value!r}: the file must end in {' or '.join(GRAPH_FORMATS)}"
        )
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a blueprint YAML file")
    parser.add_argument(
        "--graph",
        metavar="FILE",
        type=_graph_file,
        help="also write the block/field graph to FILE.dot (Graphviz) or FILE.png (matplotlib)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="weight seed (weights are counted, not shown)"
    )


def write_graph(trace, path: Path) -> None:
    """Write ``trace``'s data-flow graph to ``path`` (.dot text or a .png drawing).

    Raises:
        CommandError: the file cannot be written, or a PNG is asked for without matplotlib.
    """
    try:
        if path.suffix.lower() == ".dot":
            path.write_text(trace.to_dot(), encoding="utf-8")
            return
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CommandError(
                f"drawing {path} needs matplotlib: pip install 'geocompose[draw]' "
                "(or write --graph FILE.dot, which needs nothing)"
            ) from None
        trace.draw_png(str(path))
    except OSError as err:
        raise CommandError(f"cannot write {path}: {err.strerror or err}") from None


def run(args: argparse.Namespace) -> int:
    model = geocompose.compile(args.path, seed=args.seed)
    trace = model.trace
    if args.graph is not None:
        # Before printing: an unwritable file is reported first, and a reader that
        # closes the pipe early (`| head`) does not lose the file.
        write_graph(trace, args.graph)
    out = console()
    out.print(trace.table())
    out.print(Text(trace.summary()), soft_wrap=True)
    out.print()
    out.print(Text("blocks:", style="bold"))
    # One block per trace row, in pipeline order; the repr is each module's
    # extra_repr (reads -> writes, guarantee, weights) plus its submodules.
    for row, block in zip(trace.rows, model.blocks, strict=True):
        out.print(Text(f"[{row.knob}] {block!r}"), soft_wrap=True)
    if args.graph is not None:
        out.print(Text(f"wrote {args.graph}"))
    return EXIT_OK
