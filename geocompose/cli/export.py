"""geocompose export: a trained checkpoint as a torch.export file that runs without geocompose.

Traces everything after the neighbour list with ``torch.export`` (dynamic numbers of
atoms, edges and structures; see :mod:`geocompose.train.export`), using the first two
structures of DATA as the example, then loads the written file back and compares it
with the checkpoint on the next structures of DATA, printing the largest differences::

    geocompose export runs/cu/best.pt runs/cu/model.pt2 geocompose/data/examples/cu_emt_small.extxyz

The file holds the species, the graph settings and the dtype; ``examples/run_exported.py``
runs it with torch, numpy, vesin and ASE's reader only.
"""

from __future__ import annotations

import argparse

from geocompose.cli.common import EXIT_OK, CommandError, console
from geocompose.data.dataset import Dataset
from geocompose.train import load_checkpoint
from geocompose.train.checkpoint import DTYPES, build_potential
from geocompose.train.export import ExportedPotential, export_deviation, export_potential

__all__ = ["add_arguments", "run"]

CHECKED = 4  # structures compared after the export (besides the two traced)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="a checkpoint written by `geocompose train`"
    )
    parser.add_argument("out", metavar="OUT.pt2", help="file to write")
    parser.add_argument(
        "data",
        metavar="DATA",
        help="structures of the model's species (any file ASE reads): the first two are the "
        "tracing example, the next ones the check",
    )
    parser.add_argument(
        "--raw", action="store_true", help="export the last step's weights, not the averaged ones"
    )


def run(args: argparse.Namespace) -> int:
    out = console()
    state = load_checkpoint(args.checkpoint)
    potential = build_potential(state, averaged=not args.raw, where=args.checkpoint)
    data = Dataset.from_file(args.data)
    if len(data) < 2:
        raise CommandError(f"{args.data}: export needs at least 2 structures to trace with")
    data.check(potential.species, require=())
    dtype = DTYPES[state["dtype"]]
    path = export_potential(
        potential, args.out, data.collate([0, 1], dtype), graph=state["blueprint"]["graph"]
    )
    exported = ExportedPotential(path)
    checked = list(range(2, min(len(data), 2 + CHECKED))) or [0, 1]
    deviation = export_deviation(potential, exported, data.collate(checked, dtype))
    out.print(f"wrote {path} ({state['blueprint']['name']}, {state['dtype']})", highlight=False)
    out.print(
        f"reloaded and compared on {len(checked)} structures of {args.data}: largest difference "
        + ", ".join(f"{name} {value:.2e}" for name, value in deviation.items()),
        highlight=False,
    )
    return EXIT_OK
