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
    geocompose study BLUEPRINT... DATA [--epochs N]     train each on the same data and seed, compare
    geocompose export CHECKPOINT OUT.pt2 DATA           torch.export file that runs without geocompose
    geocompose export CHECKPOINT OUT.pt --format metatomic  metatomic model (ASE, LAMMPS, i-PI, ...)
    geocompose lammps IN.lmp --model CHECKPOINT         run a LAMMPS input with the model as potential

``--import MODULE`` (repeatable, before the command) imports user code first, so the
blocks it registers with ``@register`` are valid ``type:`` values for every command::

    geocompose --import my_blocks verify my-model.yaml

Each command is one module of this package with ``add_arguments(parser)`` and
``run(args) -> exit code``. Exit codes, the same for every command (see
:mod:`geocompose.cli.common`): 0 ok, 1 a claim violated or a job failed its own
criterion, 2 bad input, 3 internal error (a bug in geocompose). :func:`main` is the one
place that turns exceptions into them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
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
    study,
    train,
    verify,
)
from geocompose.cli.common import (
    EXIT_CONTRACT,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INVALID,
    CommandError,
    UserCodeError,
    exit_code,
    file_error,
    render,
)
from geocompose.errors import GeocomposeError

__all__ = ["build_parser", "import_user_modules", "main"]

COMMANDS = (info, knobs, schema, verify, expressivity, space, search, train, evaluate, study,
            export, lammps)  # fmt: skip
"""Command modules, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geocompose",
        description="Compose geometric GNNs for 3D atomic systems from typed YAML "
        "blueprints, and prove their symmetry.",
        epilog=EXIT_CONTRACT,
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
        CommandError: the module itself is not found.
        UserCodeError: the user's module raised while importing; its traceback is
            theirs to read and is shown (exit 2: the input is wrong, geocompose is not).
    """
    if names and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would, for the console script
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not (name == err.name or name.startswith(err.name + ".")):
                raise UserCodeError(name, err) from err  # it imports something missing
            raise CommandError(
                f"--import {name}: no module named {err.name!r} (searched the current "
                "directory and the installed packages)"
            ) from None
        except GeocomposeError:
            raise  # e.g. a duplicate @register: already a located, one-line error
        except Exception as err:
            raise UserCodeError(name, err) from err


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (the console script exits with it).

    This is the one handler of the exit-code contract (:data:`EXIT_CONTRACT`): a
    :class:`GeocomposeError` becomes its one-paragraph message and 1 or 2; an
    ``OSError`` on a file the user named (an unwritable ``--out``) becomes 2; anything
    else is a bug in geocompose: its traceback goes to stderr and the code is 3, never
    1, so a crash is never read as "claim violated".

    Args:
        argv: the arguments after the program name; ``None`` reads ``sys.argv``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)  # a bad command line: argparse exits 2 itself
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
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("geocompose: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        problem = file_error(err)
        if problem is None:
            return _internal_error(err)
        print(render(problem), file=sys.stderr)
        return EXIT_INVALID
    except Exception as err:  # noqa: BLE001 - the contract: every crash is exit 3
        return _internal_error(err)


def _internal_error(err: BaseException) -> int:
    """Print a crash as what it is, a bug in geocompose, with its traceback; exit 3."""
    summary = " ".join(f"{type(err).__name__}: {err}".split())
    print(f"geocompose: internal error (a bug in geocompose): {summary[:300]}", file=sys.stderr)
    traceback.print_exception(err, file=sys.stderr)
    print(
        "geocompose: please report this with the command and the traceback above",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover - `python -m geocompose` goes through __main__
    sys.exit(main())
