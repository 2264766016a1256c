"""geocompose space: how big a search space is, how much of it type-checks, and why not.

Every candidate is put through the compiler's typing rules (no weights are built):
the whole space when it has at most ``--enumerate-up-to`` candidates, a seeded random
sample of ``--samples`` otherwise. Refusals are grouped by knob and reason::

    geocompose space examples/search-space.yaml
"""

from __future__ import annotations

import argparse
import math

from rich.table import Table

from geocompose.cli.common import EXIT_OK, console
from geocompose.search.sampler import survey
from geocompose.search.space import read_space

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", help="search-space YAML (a blueprint with choices)")
    parser.add_argument(
        "--samples", type=int, default=500, help="candidates to sample when too big to enumerate"
    )
    parser.add_argument(
        "--enumerate-up-to", type=int, default=2000, help="enumerate spaces up to this size"
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    space = read_space(args.space)
    report = survey(
        space, enumerate_up_to=args.enumerate_up_to, samples=args.samples, seed=args.seed
    )
    out = console()
    size = "infinite (float ranges)" if math.isinf(report.size) else f"{int(report.size):,}"
    how = "enumerated" if report.enumerated else f"sampled {report.examined:,} (seed {args.seed})"
    out.print(f"{args.space}: {len(space.parameters())} knobs to choose, {size} candidates; {how}")
    out.print(
        f"valid: {report.valid:,} of {report.examined:,} ({100 * report.valid_fraction:.1f} %) type-check"
    )
    if report.reasons:
        table = Table(title="why the rest is refused")
        table.add_column("candidates", justify="right")
        table.add_column("knob: reason")
        for reason, count in report.reasons.most_common():
            table.add_row(f"{count:,}", reason)
        out.print(table)
    return EXIT_OK
