"""geocompose evaluate: errors of a trained checkpoint on reference data.

Prints energy MAE and RMSE per structure and per atom, force MAE and RMSE per
component (and stress, when the data has it and the structures are periodic), and
writes a parity plot (PNG, needs matplotlib)::

    geocompose evaluate runs/cu/best.pt geocompose/data/examples/cu_emt_small.extxyz \\
        --split valid --plot runs/cu/parity.png

``--split`` picks the checkpoint's own train/valid/test structures (the data file must
be the one it was trained on); the default evaluates every structure in DATA.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from geocompose.cli.common import EXIT_OK, CommandError, console
from geocompose.cli.train import metrics_table
from geocompose.data.dataset import Dataset
from geocompose.train import evaluate, load_checkpoint, parity_plot
from geocompose.train.checkpoint import DTYPES, build_potential
from geocompose.train.distributed import available

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="a checkpoint written by `geocompose train`"
    )
    parser.add_argument(
        "data", metavar="DATA", help="reference data (extxyz, or any file ASE reads)"
    )
    parser.add_argument(
        "--split",
        choices=("all", "train", "valid", "test"),
        default="all",
        help="structures to evaluate (default: %(default)s)",
    )
    parser.add_argument(
        "--plot", metavar="FILE.png", help="parity plot path (default: <checkpoint>_parity.png)"
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the parity plot")
    parser.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    parser.add_argument(
        "--raw", action="store_true", help="use the last step's weights, not the averaged ones"
    )
    parser.add_argument(
        "--batch-atoms", type=int, default=1024, help="atoms per batch (default: %(default)s)"
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    parser.add_argument("--energy-key", default="energy", help="name of the energy in the file")
    parser.add_argument("--forces-key", default="forces", help="name of the forces in the file")
    parser.add_argument("--stress-key", default="stress", help="name of the stress in the file")


def run(args: argparse.Namespace) -> int:
    out = console()
    device = available(args.device)  # before any work: a one-line refusal, exit 2
    state = load_checkpoint(args.checkpoint)
    potential = build_potential(state, averaged=not args.raw, where=args.checkpoint).to(device)
    data = Dataset.from_file(
        args.data,
        energy_key=args.energy_key,
        forces_key=args.forces_key,
        stress_key=args.stress_key,
    )
    indices = list(range(len(data)))
    if args.split != "all":
        saved = state.get("data_fingerprint")
        if len(data) != state.get("data_size") or saved not in (None, data.fingerprint()):
            raise CommandError(
                f"--split {args.split}: {args.checkpoint} was trained on {state.get('data_size')} structures "
                f"({state.get('data')}), {args.data} has {len(data)} (or other ones); "
                "evaluate --split all instead"
            )
        indices = list(state["splits"][args.split])
        if not indices:
            raise CommandError(f"the checkpoint's {args.split} split is empty")
    data.check(potential.species, require=("energy",))
    dtype = DTYPES[state["dtype"]]
    batches = [b.to(device=device) for b in data.batches(indices, args.batch_atoms, dtype)]
    metrics, _ = evaluate(potential, batches, keep=not args.no_plot)
    summary = metrics.compute()
    weights = "raw" if args.raw or state.get("ema") is None else "averaged"
    # The description is a plain line: a table title would wrap a long path mid-word.
    out.print(
        f"{state['blueprint']['name']} on {args.data} "
        f"({args.split}: {len(indices)} structures, {weights} weights)",
        highlight=False,
        soft_wrap=True,
    )
    out.print(metrics_table("errors", summary))
    if not args.no_plot:
        path = (
            Path(args.plot)
            if args.plot
            else Path(args.checkpoint).with_name(Path(args.checkpoint).stem + "_parity.png")
        )
        try:
            parity_plot(metrics, path, title=f"{state['blueprint']['name']} ({args.split})")
        except ImportError:
            raise CommandError(
                "the parity plot needs matplotlib (pip install matplotlib), or pass --no-plot"
            ) from None
        out.print(f"parity plot: {path}", highlight=False)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"structures": len(indices), **summary}, indent=2) + "\n"
        )
    return EXIT_OK
