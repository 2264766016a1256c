"""geocompose export: a trained checkpoint as a file that runs without geocompose.

Two formats, one trace (everything after the neighbour list, ``torch.export`` with
dynamic numbers of atoms, edges and structures; see :mod:`geocompose.train.export`):

* ``--format pt2`` (default): the ``torch.export`` program; the caller builds the
  neighbour list (``examples/run_exported.py`` runs it with torch, numpy, vesin, ASE);
* ``--format metatomic``: a metatomic atomistic model (TorchScript twin of the same
  trace, :mod:`geocompose.deploy.metatomic`) that metatomic-ase, LAMMPS, i-PI, TorchSim
  and other metatomic engines load::

    geocompose export runs/cu/best.pt runs/cu/model.pt2 geocompose/data/examples/cu_emt_small.extxyz
    geocompose export runs/cu/best.pt runs/cu/cu.pt --format metatomic --dtype float64

The first two structures of DATA are the tracing example; the written file is loaded
back and compared with the checkpoint on the next ones, and the largest differences are
printed. Without DATA, small periodic cells and molecules of the model's species are
drawn (seeded) for both.
"""

from __future__ import annotations

import argparse

import numpy as np

from geocompose.cli.common import EXIT_OK, CommandError, console
from geocompose.data.dataset import Dataset
from geocompose.data.structures import random_cell, random_molecule
from geocompose.deploy.inference import load_for_inference
from geocompose.train.checkpoint import DTYPES, load_checkpoint
from geocompose.train.export import ExportedPotential, export_deviation, export_potential

__all__ = ["add_arguments", "run"]

CHECKED = 4  # structures compared after the export (besides the two traced)
FORMATS = ("pt2", "metatomic")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="a checkpoint written by `geocompose train`"
    )
    parser.add_argument("out", metavar="OUT", help="file to write (.pt2, or .pt for metatomic)")
    parser.add_argument(
        "data",
        metavar="DATA",
        nargs="?",
        help="structures of the model's species (any file ASE reads): the first two are the "
        "tracing example, the next ones the check; default: drawn from the model's species",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="pt2", help="pt2 (torch.export) or metatomic"
    )
    parser.add_argument(
        "--dtype", choices=tuple(DTYPES), help="precision of the export (default: the checkpoint's)"
    )
    parser.add_argument(
        "--raw", action="store_true", help="export the last step's weights, not the averaged ones"
    )


def _structures(args: argparse.Namespace, species: tuple[str, ...], cutoff: float) -> Dataset:
    """DATA, checked against the model's species, or drawn structures of its species."""
    if args.data is None:
        rng = np.random.default_rng(0)
        drawn = [
            random_cell(rng, list(species), max_atoms=6),
            random_molecule(rng, list(species), cutoff),
        ]
        drawn += [random_cell(rng, list(species), max_atoms=8) for _ in range(2)]
        drawn += [random_molecule(rng, list(species), cutoff) for _ in range(2)]
        return Dataset.from_atoms(
            drawn, source=f"drawn cells and molecules of {', '.join(species)}"
        )
    data = Dataset.from_file(args.data)
    if len(data) < 2:
        raise CommandError(f"{args.data}: export needs at least 2 structures to trace with")
    data.check(species, require=())
    return data


def run(args: argparse.Namespace) -> int:
    out = console()
    state = load_checkpoint(args.checkpoint)
    potential = load_for_inference(args.checkpoint, args.dtype, averaged=not args.raw)
    model = potential.model
    dtype = model.dtype
    data = _structures(args, model.species, model.trace.cutoff)
    example = data.collate([0, 1], dtype)
    checked = list(range(2, min(len(data), 2 + CHECKED))) or [0, 1]
    batch = data.collate(checked, dtype)
    if args.format == "metatomic":
        try:
            from geocompose.deploy.metatomic import metatomic_deviation, save_metatomic
        except ImportError as err:
            raise CommandError(
                f"--format metatomic needs metatomic-torch and metatomic-ase ({err}); "
                'install them with pip install "geocompose[deploy]"'
            ) from None

        path = save_metatomic(potential, args.out, example)
        deviation = metatomic_deviation(potential, path, batch)
        how = "loaded with metatomic-ase"
    else:
        path = export_potential(potential, args.out, example, graph=state["blueprint"]["graph"])
        deviation = export_deviation(potential, ExportedPotential(path), batch)
        how = "reloaded"
    name = str(dtype).removeprefix("torch.")
    out.print(f"wrote {path} ({model.name}, {args.format}, {name})", highlight=False)
    out.print(
        f"{how} and compared on {len(checked)} structures of {data.source}: largest difference "
        + ", ".join(f"{key} {value:.2e}" for key, value in deviation.items()),
        highlight=False,
    )
    return EXIT_OK
