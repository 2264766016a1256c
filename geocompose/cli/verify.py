"""geocompose verify: prove that each blueprint has the symmetry it claims.

Each PATH is a blueprint file or a directory (its ``*.yaml`` files are verified, in
name order). Every blueprint is compiled with seeded float64 weights and checked on
sampled structures and group elements (``geocompose.verification.verify``); one table per
blueprint, then a summary across all of them. When a symmetry claim fails, the table's
title names the first block whose output breaks its declared type. ``--json FILE``
writes every report (each check, its error, tolerance and verdict) as JSON. Every file
is verified even when an earlier one fails; the exit code is the worst seen::

    0  every claim of every blueprint holds
    1  a claim is violated (the table says which, with the measured error)
    2  a blueprint is invalid or unreadable (its error is printed, located, on stderr)
    3  the verifier itself crashed (a bug: its traceback is printed on stderr); a
       crash is never reported as a violated claim

Black boxes get the same report: ``--calculator MODULE:FACTORY`` verifies any ASE
calculator (``FACTORY(**json.loads(--kwargs))`` makes it), ``--checkpoint FILE`` a
model trained by ``geocompose train`` (its compiled blueprint, plus the stress of the
trained potential), ``--export FILE`` a file of ``geocompose export`` (a ``.pt2``, run
with our radius graph, or a metatomic model, run by metatomic-ase's calculator). With
``--python PYTHON`` the factory runs under that interpreter (a peer code's own virtual
environment), in a worker process that dies with this one
(``geocompose.verification.remote``). For a calculator or an export the claim comes
from ``--claim`` (default O(3)) and the sampled elements from ``--species`` (an export's
default: the species it declares, and its cutoff for ``--cutoff``); locality and
extensivity are claims only when ``--reach`` states the range beyond which atoms never
interact.

Examples::

    geocompose verify blueprints/ --samples 2 --seed 0 --json report.json
    geocompose verify --calculator ase.calculators.emt:EMT --species Cu Al Ni
    geocompose verify --export runs/cu/cu.pt            # metatomic model, O(3) claimed
    geocompose verify --python /work/venvs/mace/bin/python \\
        --calculator benchmarks.peers.mace_calculator:mace_calculator --species H C O Cu
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text

from geocompose import verification
from geocompose.cli.common import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INVALID,
    EXIT_OK,
    CommandError,
    console,
    exit_code,
    json_object,
    render,
)
from geocompose.errors import GeocomposeError
from geocompose.types.group import Group
from geocompose.verification.report import write_json

__all__ = ["Outcome", "add_arguments", "blueprint_files", "run"]


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number; got {value!r}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", metavar="PATH", nargs="*", help="blueprint files or directories of them"
    )
    box = parser.add_argument_group("black boxes")
    box.add_argument("--calculator", metavar="MODULE:FACTORY", help="an ASE calculator factory")
    box.add_argument(
        "--kwargs", default="{}", metavar="JSON", help="keyword arguments of FACTORY, as JSON"
    )
    box.add_argument(
        "--python",
        metavar="PYTHON",
        help="run the --calculator factory under this interpreter (another virtual "
        "environment's bin/python), in a worker process that dies with this one",
    )
    box.add_argument("--checkpoint", metavar="FILE", help="a checkpoint of geocompose train")
    box.add_argument(
        "--export",
        metavar="FILE",
        help="a file of geocompose export: .pt2, or a metatomic model (run by metatomic-ase)",
    )
    box.add_argument(
        "--claim",
        choices=[g.value for g in Group],
        default=Group.O3.value,
        help="the group the calculator claims (default O(3))",
    )
    box.add_argument(
        "--species",
        nargs="+",
        default=[],
        help="elements to sample structures of (--export: default the file's species)",
    )
    box.add_argument(
        "--cutoff",
        type=float,
        default=None,
        help="calculator: sizes samples, Å (default 5; --export: the file's cutoff)",
    )
    box.add_argument(
        "--reach",
        type=float,
        default=None,
        help="calculator: range beyond which atoms never interact, Å (claims locality)",
    )
    box.add_argument(
        "--smooth", action="store_true", help="calculator: claim continuity at --cutoff"
    )
    box.add_argument(
        "--molecules-only", action="store_true", help="calculator: do not sample periodic cells"
    )
    parser.add_argument(
        "--samples",
        type=_positive,
        default=None,
        help="random molecules (and periodic cells) per blueprint (verifier default if unset)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of structures, group elements and weights (verifier default if unset)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only the summary table")
    parser.add_argument(
        "--json", metavar="FILE", default=None, help="also write every report as JSON to FILE"
    )
    parser.add_argument(
        "--curves",
        action="store_true",
        help="also measure diatomic curves of every species pair and a short NVE run",
    )


@dataclass
class Outcome:
    """What happened to one PATH: a report, or the error that stopped it."""

    file: str
    code: int
    report: object | None = None
    error: str = ""


def blueprint_files(paths: list[str]) -> list[tuple[str, str]]:
    """``(file, problem)`` for each blueprint to verify; ``problem`` is ``""`` when fine.

    Directories expand to their ``*.yaml`` files in name order; a directory with none
    is itself a problem. A missing file is passed on, for the loader to report.
    """
    files: list[tuple[str, str]] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found = sorted(p.glob("*.yaml"))
            files += [(str(f), "") for f in found]
            if not found:
                files.append((path, f"geocompose: no *.yaml blueprints in directory {path}"))
        else:
            files.append((path, ""))
    return files


def _verify_one(file: str, source, options: dict) -> Outcome:
    # Looked up per call (not imported by name) so tests can monkeypatch it.
    verify = verification.verify
    try:
        report = verify(source, **options)
    except GeocomposeError as err:
        print(render(err), file=sys.stderr)
        lines = render(err).splitlines()
        more = f" (+{len(lines) - 1} more on stderr)" if len(lines) > 1 else ""
        return Outcome(file, exit_code(err), error=lines[0] + more)
    except Exception as err:  # a bug in the verifier or the model: never a violated claim
        traceback.print_exc(file=sys.stderr)
        summary = " ".join(f"{type(err).__name__}: {err}".split())[:200]
        return Outcome(file, EXIT_INTERNAL, error=f"internal error: {summary}")
    return Outcome(file, EXIT_OK if report.passed else EXIT_FAILED, report=report)


_RESULT = {
    EXIT_OK: "verified",
    EXIT_FAILED: "claim violated",
    EXIT_INVALID: "invalid",
    EXIT_INTERNAL: "internal error",
}


def _summary(outcomes: list[Outcome]) -> Table:
    table = Table(title="verification summary", title_justify="left")
    for column in ("blueprint", "name", "result", "details"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        result = Text(_RESULT[o.code], style="green" if o.code == EXIT_OK else "red")
        if o.report is None:
            # The file is in the first column already: keep `line:col: knob: message`.
            details = o.error.removeprefix(f"{o.file}:")
            table.add_row(o.file, "—", result, Text(details))
            continue
        failures = [c.name for c in o.report.failures]
        details = f"failed: {', '.join(failures)}" if failures else ""
        if o.report.blame is not None:
            details += f"; {o.report.blame.text()}"
        table.add_row(o.file, str(o.report.name), result, Text(details))
    return table


def _json_entry(o: Outcome) -> dict:
    entry = {"file": o.file, "exit_code": o.code, "result": _RESULT[o.code]}
    if o.report is not None:
        entry["report"] = o.report.to_dict()
    else:
        entry["error"] = o.error
    return entry


def black_box(args: argparse.Namespace, stack: contextlib.ExitStack):
    """``(label, Subject)`` for ``--calculator`` / ``--checkpoint``, or None; a worker
    process (``--python``) is closed when ``stack`` is.

    Raises:
        CommandError: a factory that cannot be imported or called, bad ``--kwargs``.
        RemoteCalculatorRefused: ``--python`` cannot run the factory.
    """
    if args.checkpoint is not None:
        from geocompose.cli.black_box import checkpoint_subject

        return args.checkpoint, checkpoint_subject(args.checkpoint)
    if args.python is not None and args.calculator is None:
        raise CommandError("--python runs a --calculator MODULE:FACTORY: give one")
    if args.calculator is None and args.export is None:
        return None
    from geocompose.verification.calculator import calculator_subject

    species, cutoff, name = args.species, args.cutoff, None
    if args.export is not None:
        from geocompose.cli.black_box import export_calculator

        calculator, declared, file_cutoff, name = export_calculator(args.export)
        species = species or declared
        cutoff = file_cutoff if cutoff is None else cutoff
    elif args.python is not None:
        from geocompose.verification.remote import RemoteCalculator

        remote = RemoteCalculator(
            args.calculator, args.python, json_object(args.kwargs, "--kwargs")
        )
        calculator, name = stack.enter_context(remote), remote.describe()
    else:
        from geocompose.cli.black_box import make_calculator

        calculator = make_calculator(args.calculator, args.kwargs)
    subject = calculator_subject(
        calculator,
        species=species,
        claim=Group(args.claim),
        cutoff=5.0 if cutoff is None else cutoff,
        reach=args.reach,
        smooth=args.smooth,
        periodic=not args.molecules_only,
        name=name,
    )
    return args.export or args.calculator, subject


def run(args: argparse.Namespace) -> int:
    options = {k: v for k, v in (("samples", args.samples), ("seed", args.seed)) if v is not None}
    if args.curves:
        from geocompose.verification.battery import FULL_CHECKS

        options["checks"] = FULL_CHECKS
    with contextlib.ExitStack() as stack:
        return _run(args, options, black_box(args, stack))


def _run(args: argparse.Namespace, options: dict, box) -> int:
    out = console()
    outcomes: list[Outcome] = []
    if box is None and not args.paths:
        raise CommandError(
            "give blueprint PATHs, --calculator MODULE:FACTORY, --checkpoint FILE or --export FILE"
        )
    targets = [(box[0], "")] if box is not None else []
    for file, problem in targets + blueprint_files(args.paths):
        if problem:
            print(problem, file=sys.stderr)
            outcomes.append(Outcome(file, EXIT_INVALID, error=problem))
            continue
        source = box[1] if box is not None and file == box[0] else file
        outcome = _verify_one(file, source, options)
        if outcome.report is not None and not args.quiet:
            out.print(outcome.report.table())
        outcomes.append(outcome)
    out.print(_summary(outcomes))
    if args.json is not None:
        write_json([_json_entry(o) for o in outcomes], args.json)
    return max(o.code for o in outcomes)
