"""``geocompose``: the command line.

::

    geocompose info PATH [--graph FILE.png|FILE.dot]   type trace and blocks of a blueprint
    geocompose knobs [NAME] [--kind KIND] [--markdown]  the registry: every knob and its params
    geocompose schema                                   JSON Schema of blueprints (for editors)
    geocompose verify PATH... [--samples N] [--seed S]  prove each blueprint's symmetry claims
    geocompose expressivity BLUEPRINT... [--suite S] [--quick]  tell apart hard pairs of graphs
    geocompose space SPACE.yaml                         size of a search space, how much type-checks
    geocompose search SPACE.yaml DATA --trials N [--workers K] [--best]  architecture search (Optuna)
    geocompose train BLUEPRINT DATA [--epochs N --out DIR]  fit to reference energies and forces
    geocompose evaluate CHECKPOINT DATA [--plot FILE]   energy/force errors and a parity plot
    geocompose export CHECKPOINT OUT.pt2 DATA           torch.export file that runs without geocompose
    geocompose lammps IN.lmp --model CHECKPOINT         run a LAMMPS input with the model as potential

``--import MODULE`` (repeatable, before the command) imports user code first, so the
blocks it registers with ``@register`` are valid ``type:`` values for every command::

    geocompose --import my_blocks verify my-model.yaml

Each command is one module of this package with ``add_arguments(parser)`` and
``run(args) -> exit code``. See :mod:`geocompose.cli.common` for the exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import geocompose
from geocompose.cli import (
    evaluate,
    export,
    expressivity,
    info,
    knobs,
    lammps,
    schema,
    search,
    space,
    train,
    verify,
)
from geocompose.cli.common import EXIT_INVALID, CommandError, exit_code, render
from geocompose.errors import GeocomposeError

__all__ = ["build_parser", "import_user_modules", "main"]

COMMANDS = (info, knobs, schema, verify, expressivity, space, search, train, evaluate, export,
            lammps)  # fmt: skip
"""Command modules, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geocompose",
        description="Compose geometric GNNs for 3D atomic systems from typed YAML "
        "blueprints, and prove their symmetry.",
        epilog="Exit codes: 0 ok, 1 a claim is violated, 2 invalid input.",
    )
    parser.add_argument(
        "--version", action="version", version=f"geocompose {geocompose.__version__}"
    )
    parser.add_argument(
        "-i",
        "--import",
        dest="imports",
        metavar="MODULE",
        action="append",
        default=[],
        help="import MODULE first (with the current directory on the path) so the blocks "
        "it registers can be used; repeatable",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        name = module.__name__.rsplit(".", 1)[-1]
        doc = (module.__doc__ or "").strip().splitlines()
        command = sub.add_parser(
            name,
            help=doc[0].split(": ", 1)[-1] if doc else None,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def import_user_modules(names: Sequence[str]) -> None:
    """Import each module named on the command line (user blocks register on import).

    Raises:
        CommandError: the module itself is not found. An error raised *inside* the
            user's module is theirs to read and keeps its traceback.
    """
    if names and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would, for the console script
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not (name == err.name or name.startswith(err.name + ".")):
                raise  # the module exists but imports something missing: their bug
            raise CommandError(
                f"--import {name}: no module named {err.name!r} (searched the current "
                "directory and the installed packages)"
            ) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (the console script exits with it).

    Args:
        argv: the arguments after the program name; ``None`` reads ``sys.argv``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_INVALID
    try:
        import_user_modules(args.imports)
        return args.run(args)
    except GeocomposeError as err:
        print(render(err), file=sys.stderr)
        return exit_code(err)
    except BrokenPipeError:
        # `geocompose knobs | head`: the reader left. Not an error of ours or the user's;
        # silence the second BrokenPipeError Python would raise when flushing at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("geocompose: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover - `python -m geocompose` goes through __main__
    sys.exit(main())
