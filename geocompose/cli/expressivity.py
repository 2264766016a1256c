"""geocompose expressivity: which hard pairs of geometric graphs each blueprint tells apart.

Reproduces the synthetic experiments of Joshi et al., "On the Expressive Power of
Geometric Graph Neural Networks" (ICML 2023) for any blueprint: the blueprint's readout
is replaced by a classifier head and it is trained on each pair of a suite, or, with
``--quick``, only checked at random init (float64: do the two graphs give different
features beyond float noise?). Suites::

    chains           k-chains (--k, default 4), layers 1..6 by default       (depth)
    counterexamples  pairs equal in distances / distances+angles, 1 layer    (body order)
    symmetric        L-fold stars turned by pi/L (--folds), 1 layer          (tensor order)
    all              the three

Trained cells are accuracy on the pair, mean ± population std over seeds (the paper's
Adam, lr 1e-4, 100 epochs, batch size 1, 10 seeds; fresh weights per seed unless
--warm-start, which continues each seed from the previous one as the public code does).
Quick cells: ``✓ 3e-11`` separated in every seed (smallest relative gap), ``✗ =0``
bit-identical features, ``✗`` at the noise floor, ``~`` inconclusive, ``k/n ✓`` mixed.

For the chains and counterexamples suites the table and the CSV also hold two oracle
rows, ``IGWL`` and ``GWL`` (readout ``oracle``): the invariant and the geometric
Weisfeiler-Leman tests run for as many iterations as the column has layers, 100 where
they separate the pair, else 50 (:mod:`geocompose.expressivity.wl`). ``--plot FILE.png``
draws accuracy against layers, one panel per pair, with the oracles as reference lines;
it needs matplotlib (``pip install 'geocompose[draw]'``) and is written only when asked.

Examples::

    geocompose expressivity blueprints/ --suite chains --quick
    geocompose expressivity blueprints/painn.yaml --suite chains --layers 1..6 --seeds 3 --epochs 50
    geocompose expressivity blueprints/ --suite all --quick --csv cells.csv --plot cells.png
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from geocompose.cli.common import EXIT_OK, CommandError, console
from geocompose.cli.verify import blueprint_files

__all__ = ["add_arguments", "parse_layers", "run", "table"]

SUITE_CHOICES = ("chains", "counterexamples", "symmetric", "rotsym", "all")


def parse_layers(text: str) -> tuple[int, ...]:
    """``3`` / ``1..6`` / ``1,2,4`` → layer counts (positive, in order given)."""
    try:
        if ".." in text:
            low, high = (int(part) for part in text.split("..", 1))
            values = tuple(range(low, high + 1))
        else:
            values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"layers must look like 3, 1..6 or 1,2,4 (positive); got {text!r}"
        )
    return values


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive; got {text!r}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", metavar="BLUEPRINT", nargs="+", help="blueprint files or directories of them"
    )
    parser.add_argument(
        "--suite", choices=SUITE_CHOICES, default="chains", help="which suite (default chains)"
    )
    parser.add_argument(
        "--layers", type=parse_layers, default=None, help="e.g. 1..6 or 1,3 (default: the suite's)"
    )
    parser.add_argument(
        "--seeds", type=_positive(int), default=None, help="seeds (default 10 trained, 3 quick)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="random-init distinguishability only (no training)"
    )
    parser.add_argument(
        "--epochs", type=_positive(int), default=100, help="training epochs (default 100)"
    )
    parser.add_argument(
        "--lr", type=_positive(float), default=1e-4, help="Adam learning rate (default 1e-4)"
    )
    parser.add_argument(
        "--warm-start",
        action="store_true",
        help="continue each seed from the previous seed's weights (public code)",
    )
    parser.add_argument(
        "--k", type=_positive(int), default=4, help="chain length for the chains suite (default 4)"
    )
    parser.add_argument(
        "--folds",
        type=parse_layers,
        default=(2, 3, 5, 10),
        help="symmetry orders of the stars (default 2,3,5,10)",
    )
    parser.add_argument("--csv", metavar="FILE", default=None, help="also write every cell as CSV")
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        default=None,
        help="also draw accuracy vs layers per pair (needs geocompose[draw])",
    )
    parser.add_argument(
        "--no-oracles", action="store_true", help="leave out the IGWL and GWL oracle rows"
    )


def _columns(rows) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    for row in rows:
        if (row.pair, row.layers) not in seen:
            seen.append((row.pair, row.layers))
    return seen


def table(rows, title: str | None = None) -> Table:
    """Model x (pair, layers) table, one cell per run, like the paper's."""
    columns = _columns(rows)
    pairs = {p for p, _ in columns}
    depths = {n for _, n in columns}
    out = Table(title=title, title_justify="left")
    out.add_column("model", overflow="fold")
    out.add_column("readout", overflow="fold")
    for pair, depth in columns:
        header = str(depth) if len(pairs) == 1 else pair if len(depths) == 1 else f"{pair} L{depth}"
        out.add_column(header, justify="right")
    models: dict[str, dict] = {}
    readouts: dict[str, str] = {}
    oracles = set()
    for row in rows:
        name = f"{row.blueprint} (oracle)" if row.is_oracle else row.blueprint
        models.setdefault(name, {})[(row.pair, row.layers)] = row.cell()
        readouts.setdefault(name, row.readout)
        if row.is_oracle:
            oracles.add(name)
    for model, cells in models.items():
        out.add_row(
            model,
            readouts[model],
            *(cells.get(c, "—") for c in columns),
            style="dim" if model in oracles else None,
        )
    return out


def _write_csv(path: str, rows_by_suite: dict) -> None:
    try:
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["suite", "model", "pair", "layers", "readout", "cell", "accuracy", "per_seed"]
            )
            for suite, rows in rows_by_suite.items():
                for r in rows:
                    per_seed = getattr(r.result, "best", None) or getattr(
                        r.result, "relative_gaps", []
                    )
                    writer.writerow(
                        [
                            suite,
                            r.blueprint,
                            r.pair,
                            r.layers,
                            r.readout,
                            r.cell(),
                            f"{r.accuracy:.1f}",
                            " ".join(f"{v:.3g}" for v in per_seed),
                        ]
                    )
    except OSError as err:
        raise CommandError(f"cannot write {path}: {err.strerror}") from None


def run(args: argparse.Namespace) -> int:
    from geocompose.expressivity import SUITES, Protocol, oracle_rows, run_suite, suite_pairs
    from geocompose.expressivity.suites import ORACLE_SUITES

    files = []
    for file, problem in blueprint_files(args.paths):
        if problem:
            raise CommandError(problem.removeprefix("geocompose: "))
        if not Path(file).exists():
            raise CommandError(f"no such blueprint file: {file}")
        files.append(file)
    if args.plot:
        from geocompose.expressivity.plot import have_matplotlib

        if not have_matplotlib():
            raise CommandError(
                "--plot needs matplotlib: pip install 'geocompose[draw]' (or leave out --plot)"
            )
    suites = ["chains", "counterexamples", "symmetric"] if args.suite == "all" else [args.suite]
    protocol = Protocol(
        epochs=args.epochs, lr=args.lr, seeds=args.seeds or 10, warm_start=args.warm_start
    )
    out = console()
    rows_by_suite = {}
    hows: list[str] = []
    for suite in suites:
        spec = SUITES["symmetric" if suite == "rotsym" else suite]
        layers = args.layers or spec.layers
        pairs = suite_pairs(spec.name, args.k, args.folds)
        units = (
            len(files)
            * len(pairs)
            * len(layers)
            * (1 if args.quick else protocol.seeds * protocol.epochs)
        )
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console(sys.stderr),
            transient=True,
        ) as bar:
            task = bar.add_task(spec.name, total=units)
            rows = run_suite(
                files,
                spec.name,
                layers=layers,
                quick=args.quick,
                seeds=args.seeds,
                protocol=protocol,
                k=args.k,
                folds=args.folds,
                progress=lambda label, steps, bar=bar, task=task: bar.update(
                    task, advance=steps, description=label
                ),
            )
        if args.quick:
            how = f"quick: separated at random init, {args.seeds or 3} seeds, float64"
        else:
            start = "warm-started" if args.warm_start else "fresh"
            how = f"trained: accuracy %, {protocol.seeds} seeds ({start}), {args.epochs} epochs, lr {args.lr:g}"
        if spec.name in ORACLE_SUITES and not args.no_oracles:
            rows += oracle_rows(spec.name, layers=layers, k=args.k, folds=args.folds)
            how += "; IGWL/GWL (oracle) rows: 100 where the test separates the pair in that many iterations"
        what = f"k-chains (k = {args.k})" if spec.name == "chains" else spec.name
        out.print(f"{what} · {how}", soft_wrap=True)  # a title line that never wraps
        out.print(table(rows))
        rows_by_suite[spec.name] = rows
        hows.append(how.split(";")[0])
    if args.csv:
        _write_csv(args.csv, rows_by_suite)
    if args.plot:
        from geocompose.expressivity.plot import write_plot

        try:
            write_plot(rows_by_suite, args.plot, hows[0])
        except OSError as err:
            raise CommandError(f"cannot write {args.plot}: {err.strerror or err}") from None
        out.print(f"wrote {args.plot}", highlight=False, soft_wrap=True)
    return EXIT_OK
