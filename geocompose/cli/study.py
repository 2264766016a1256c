"""geocompose study: train several blueprints on the same data, budget and seed, compare.

Each BLUEPRINT is trained by the same loop as ``geocompose train`` with the same options
and the same train / valid / test split (``--test-fraction``, default 0.2 here), then
measured on the test split: energy MAE per atom, force MAE, the relative rotation
(and, for O(3) claims, reflection) error of its outputs in float64 (the verifier's
check on the test structures), the energy drift of a short NVE run on the first test
molecule (the verifier's, relative to how much the potential energy moved), training
seconds per epoch and inference time per structure. ``--sizes N...`` trains each
blueprint once per training-set size (the first N structures of the same training
split, the same test split): a learning curve. Prints a table and writes
``OUT/study.csv``, ``OUT/study.png`` (force error against training-set size, or against
inference time with one size; needs matplotlib) and each run's checkpoints in
``OUT/<blueprint name>[-n<size>]/``::

    geocompose study blueprints/mlp-frame-averaging.yaml blueprints/mlp-weighted-frames.yaml \\
        geocompose/data/examples/ethanol_xtb_small.extxyz --epochs 5 --out runs/study

Timings are of this machine as it was during the run: compare them within one study.
"""

from __future__ import annotations

import argparse
import math
import os

from rich.table import Table

from geocompose.cli.common import EXIT_OK, CommandError, console
from geocompose.cli.train import add_config_arguments, config_from_args, read_data
from geocompose.train.study import study, study_plot, write_csv

__all__ = ["add_arguments", "run"]

TEST_FRACTION = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("blueprints", metavar="BLUEPRINT", nargs="+", help="blueprint YAML files")
    parser.add_argument(
        "data", metavar="DATA", help="reference data (extxyz, or any file ASE reads)"
    )
    parser.add_argument("--out", default="study", help="output directory (default: %(default)s)")
    parser.add_argument("--no-plot", action="store_true", help="skip OUT/study.png")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        metavar="N",
        help="training-set sizes of a learning curve (default: the whole training split)",
    )
    add_config_arguments(parser)


def fmt(value: float, spec: str) -> str:
    return "—" if math.isnan(value) else format(value, spec)


def run(args: argparse.Namespace) -> int:
    out = console()
    if args.split_files:
        raise CommandError("study splits by --valid-fraction and --test-fraction, not files")
    if args.test_fraction is None:
        args.test_fraction = TEST_FRACTION
    config = config_from_args(args)
    data = read_data(args)
    rows = study(
        args.blueprints,
        data,
        config,
        out=args.out,
        echo=lambda line: out.print(line, highlight=False),
        sizes=args.sizes,
    )
    table = Table(
        title=f"study on {args.data}: {config.epochs} epochs, seed {config.seed}, "
        f"load average {os.getloadavg()[0]:.1f}",
        title_justify="left",
    )
    columns = (
        "blueprint",
        "strategy",
        "train structures",
        "energy MAE (meV/atom)",
        "force MAE (meV/Å)",
        "rotation error",
        "reflection error",
        "NVE drift",
        "train s/epoch",
        "inference ms/structure",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in columns[:2] else "right")
    for row in rows:
        table.add_row(
            row.blueprint,
            row.strategy,
            str(row.train_structures),
            fmt(1e3 * row.energy_mae, ".2f"),
            fmt(1e3 * row.forces_mae, ".1f"),
            fmt(row.rotation_error, ".1e"),
            fmt(row.reflection_error, ".1e"),
            fmt(row.nve_drift, ".1e"),
            f"{row.train_s_per_epoch:.2f}",
            f"{row.inference_ms_per_structure:.2f}",
        )
    out.print(table)
    path = write_csv(rows, os.path.join(args.out, "study.csv"))
    out.print(f"table: {path}", highlight=False)
    if not args.no_plot:
        try:
            out.print(f"plot: {study_plot(rows, os.path.join(args.out, 'study.png'))}")
        except ImportError:
            raise CommandError(
                "the plot needs matplotlib (pip install matplotlib), or pass --no-plot"
            ) from None
    return EXIT_OK
