"""``verify``: sample structures and group elements, run every check of the battery, report.

Which checks run, when each is a claim (judged) or only measured (reported), and its
tolerance are records in :data:`geocompose.verification.battery.CHECKS`; this module only
samples the structures, runs the records in order and, when a compiled model fails a
symmetry claim, asks :mod:`geocompose.verification.blame` which block broke it.
"""

from __future__ import annotations

from collections.abc import Sequence

import ase
import numpy as np
import torch

from geocompose.compiler import compile as compile_blueprint
from geocompose.data import structures as S
from geocompose.data.batch import Batch
from geocompose.verification import blame
from geocompose.verification.battery import CHECKS
from geocompose.verification.record import Check, Sample, Skip
from geocompose.verification.report import CheckResult, Verdict, VerificationReport
from geocompose.verification.subject import Subject, compiled_subject

METALS_WITH_BULK = ("Cu", "Al", "Ni", "Ag", "Au", "Pd", "Pt", "Fe", "Na", "K", "Li")


def verify(
    source,
    *,
    samples: int = 3,
    seed: int = 0,
    checks: tuple[Check, ...] = CHECKS,
    structures: Sequence[ase.Atoms] | None = None,
) -> VerificationReport:
    """Check every claim of a model (or blueprint) in float64.

    Args:
        source: a compiled model (copied and cast to float64, never modified), a
            blueprint path / dict (compiled with weights from ``seed``), or a
            :class:`~geocompose.verification.subject.Subject` (a black box with its facts).
        samples: random molecules and random periodic cells each (plus fixed cases:
            a slab, a bulk metal with tied distances, an isolated atom, one atom, an
            empty batch).
        seed: seeds structures, group elements and (for blueprints) weights.
        checks: the battery to run (default: all of it).
        structures: the structures to check on, in place of the random molecules and
            cells, the slab and the bulk metal (the edge cases, dimers and frame
            structures are still drawn); e.g. a system of the size a calculator is
            used at.

    Raises:
        BlueprintError: the blueprint is invalid (nothing is verified).
    """
    subject = as_subject(source, seed)
    sample = draw_sample(subject, samples, seed, structures)
    facts = subject.facts
    report = VerificationReport(
        name=facts.name,
        weights=facts.weights,
        claim=facts.claim.value,
        derived=facts.derived.value,
        strategy=facts.strategy + ("" if facts.exact else " (approximate)"),
    )
    for check in checks:
        report.checks.extend(run_check(check, sample))
    failing = blame.failed_symmetries(report)
    if failing and subject.module is not None:
        report.blame = blame.first_broken_block(subject, sample, failing)
    return report


def as_subject(source, seed: int) -> Subject:
    if isinstance(source, Subject):
        return source
    if isinstance(source, torch.nn.Module):
        return compiled_subject(source)
    model = compile_blueprint(source, dtype=torch.float64, seed=seed)
    return compiled_subject(model, own=True)


def draw_sample(
    subject: Subject, samples: int, seed: int, structures: Sequence[ase.Atoms] | None = None
) -> Sample:
    """Generic molecules and (for periodic models) cells, a slab and a tied bulk metal,
    or the given ``structures``; plus structures with degenerate frames for frame
    strategies."""
    facts = subject.facts
    rng = np.random.default_rng(seed)
    species = list(facts.species)
    symmetric = S.degenerate_frame_structures(species) if facts.frames else []
    if structures is not None:
        generic = [
            (f"structure {i} ({atoms.get_chemical_formula()})", atoms)
            for i, atoms in enumerate(structures)
        ]
    else:
        generic = [
            (f"molecule {i}", S.random_molecule(rng, species, facts.cutoff)) for i in range(samples)
        ]
    if facts.periodic and structures is None:
        generic += [(f"cell {i}", S.random_cell(rng, species)) for i in range(samples)]
        generic.append(("slab", S.random_slab(rng, species)))
        metal = next((s for s in species if s in METALS_WITH_BULK), None)
        if metal is not None:
            # A lattice with tied distances: generic for graph ties, degenerate for frames.
            (symmetric if facts.frames else generic).append((f"{metal} bulk", S.metal_bulk(metal)))
    batch = Batch.from_ase([atoms for _, atoms in generic], dtype=subject.dtype)
    return Sample(
        subject=subject,
        structures=generic,
        symmetric=symmetric,
        batch=batch,
        labels=[label for label, _ in generic],
        gen=torch.Generator().manual_seed(seed),
        seed=seed,
    )


def run_check(check: Check, sample: Sample) -> list[CheckResult]:
    """The rows of one check: judged against its tolerance when claimed, else measured."""
    facts = sample.subject.facts
    rows = check.measure(sample)
    if isinstance(rows, Skip):
        return [CheckResult(check.name, None, None, Verdict.SKIPPED, rows.reason)]
    claimed = check.claimed(facts)
    tol = check.tolerance(facts) if claimed else None
    return [CheckResult.judged(name, m.worst, m.mean, m.where, tol) for name, m in rows]


__all__ = ["METALS_WITH_BULK", "as_subject", "draw_sample", "run_check", "verify"]
