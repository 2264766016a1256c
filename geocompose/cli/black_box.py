"""The black boxes ``geocompose verify`` accepts: an ASE calculator factory, a checkpoint,
a ``.pt2`` export or a metatomic model file."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import zipfile

from geocompose.cli.common import CommandError, json_object
from geocompose.types import fields as F
from geocompose.verification.calculator import CalculatorRun
from geocompose.verification.subject import Subject, compiled_subject


def make_calculator(spec: str, kwargs_json: str):
    """``MODULE:FACTORY`` called with ``json.loads(kwargs_json)``.

    Raises:
        CommandError: a malformed spec, a module or factory not found, bad JSON, or a
            factory that refuses its arguments.
    """
    module_name, sep, factory_name = spec.partition(":")
    if not sep or not module_name or not factory_name:
        raise CommandError(
            f"--calculator {spec!r}: write MODULE:FACTORY, e.g. ase.calculators.emt:EMT"
        )
    kwargs = json_object(kwargs_json, "--kwargs")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a factory in the user's own directory
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise CommandError(f"--calculator {spec}: no module named {err.name!r}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise CommandError(f"--calculator {spec}: {module_name} has no callable {factory_name!r}")
    try:
        return factory(**kwargs)
    except TypeError as err:
        raise CommandError(f"--calculator {spec} refused --kwargs {kwargs_json}: {err}") from None


def checkpoint_subject(path: str) -> Subject:
    """A trained checkpoint: its compiled model (facts from its trace, float64), plus
    energy and stress of the trained potential (in float64) for the stress check.

    Raises:
        CheckpointError: the file is missing or not a checkpoint.
    """
    from geocompose.ase import Calculator
    from geocompose.train.checkpoint import build_potential, load_checkpoint

    # Compiled in float64, not cast: constants a float32 build computes (e.g. the
    # Clebsch-Gordan tables) would keep float32 rounding through .double(), 2e-10 off.
    state = {**load_checkpoint(path), "dtype": "float64"}
    potential = build_potential(state, where=path)
    subject = compiled_subject(potential.model)
    run = CalculatorRun(Calculator(potential))
    facts = dataclasses.replace(subject.facts, stress=F.STRESS)
    return dataclasses.replace(subject, facts=facts, energy_of=run.energy, stress_of=run.stress)


def export_calculator(path: str):
    """``(calculator, species, cutoff, name)`` of an exported file: a ``.pt2`` through
    :class:`~geocompose.deploy.exported.ExportedCalculator` (our radius graph), a
    metatomic model through metatomic-ase's ``MetatomicCalculator``. Species and cutoff
    are what the file declares (the defaults of ``--species`` and ``--cutoff``).

    Raises:
        CommandError: a missing file, or one that is neither kind.
    """
    try:
        members = zipfile.ZipFile(path).namelist()
    except FileNotFoundError:
        raise CommandError(f"--export {path}: no such file") from None
    except (zipfile.BadZipFile, IsADirectoryError):
        members = []
    if any(m.endswith("/extra/geocompose.json") for m in members):
        from geocompose.deploy.exported import ExportedCalculator

        calculator = ExportedCalculator(path)
        return (
            calculator,
            list(calculator.species),
            calculator.cutoff,
            f"{calculator.model_name} (pt2)",
        )
    if any(m.endswith("/extra/metatomic-version") for m in members):
        import ase.data

        try:
            from metatomic_ase import MetatomicCalculator
        except ImportError as err:
            raise CommandError(
                f"--export {path} is a metatomic model; running it needs metatomic-ase ({err})"
            ) from None

        calculator = MetatomicCalculator(path)
        model = calculator.model()
        species = [ase.data.chemical_symbols[z] for z in model.capabilities().atomic_types]
        cutoff = max(options.cutoff for options in model.requested_neighbor_lists())
        return calculator, species, cutoff, f"{calculator.metadata().name} (metatomic)"
    raise CommandError(
        f"--export {path}: neither a .pt2 file of `geocompose export` nor a metatomic model"
    )
