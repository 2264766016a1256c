"""The checks as typed records: a name, when it is a claim, its tolerance, its function.

A new check is one :class:`Check` in :data:`CHECKS` and one function; ``verify`` runs
them in this order (they share one generator, so the order fixes every figure), and
``docs/verification.md`` lists them with their tolerances.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from geocompose.data import structures as S
from geocompose.data.batch import Batch
from geocompose.types import Level
from geocompose.types.group import Group
from geocompose.verification import (
    checks,
    curves,
    frame_paths,
    physics,
    precision,
    tolerances,
)
from geocompose.verification.record import Check, Rows, Sample, Skip
from geocompose.verification.subject import Facts


def _exact(facts: Facts) -> float:
    return tolerances.exact_rtol(torch.float64)


def _geometric_tolerance(facts: Facts) -> float:
    """An exact claim: the exact tolerance; an approximate one: its stated bound."""
    if facts.exact or facts.tolerance is None:
        return _exact(facts)
    return facts.tolerance


def _geometric_claim(group_claimed: Callable[[Facts], bool]) -> Callable[[Facts], bool]:
    """Judged when the group is claimed and the claim is exact or states a bound."""
    return lambda f: group_claimed(f) and (f.exact or f.tolerance is not None)


def _rotation(s: Sample) -> Rows:
    return [("rotation", checks.rotation_check(s.subject, s.batch, s.labels, s.gen, False))]


def _reflection(s: Sample) -> Rows:
    return [("reflection", checks.rotation_check(s.subject, s.batch, s.labels, s.gen, True))]


def _translation(s: Sample) -> Rows:
    return [("translation", checks.translation_check(s.subject, s.batch, s.labels, s.gen))]


def _degenerate_frames(s: Sample) -> Rows:
    # Repeated covariance eigenvalues make PCA frames ill-defined: reported, not judged.
    if not s.symmetric:
        return Skip("the model builds no frames from the geometry")
    labels = [label for label, _ in s.symmetric]
    batch = Batch.from_ase([atoms for _, atoms in s.symmetric])
    rows = []
    for level in (Level.STRUCTURE, Level.NODE):
        for improper, name in ((False, "rotation"), (True, "reflection")):
            measured = checks.rotation_check(s.subject, batch, labels, s.gen, improper, level)
            rows.append((f"{name}, degenerate frames ({level.value})", measured))
    return rows


def _permutation(s: Sample) -> Rows:
    return [("permutation", checks.permutation_check(s.subject, s.batch, s.labels, s.gen))]


def _periodic(s: Sample) -> Rows:
    if not any(atoms.pbc.any() for _, atoms in s.structures):
        return Skip("the model is for molecules only (graph or block not periodic)")
    batch, labels = s.sub_batch(lambda i, label, atoms: bool(atoms.pbc.any()))
    return [("periodic images", checks.periodic_check(s.subject, batch, labels))]


def _batch_independence(s: Sample) -> Rows:
    return [("batch independence", checks.batch_independence_check(s.subject, s.batch, s.labels))]


def _conservative(s: Sample) -> Rows:
    facts = s.subject.facts
    if not facts.conservative:
        return Skip("no derivative (gradient) readout")
    # Finite differences need a differentiable energy: a non-smooth graph (kNN) has kinks
    # where distances tie, so tied lattices are left out of this check for such graphs
    # (a tie at the stencil's centre is symmetric, which the check's own kink test
    # cannot see); kinks near the centre the check finds and leaves out itself.
    batch, labels = s.sub_batch(lambda i, label, atoms: facts.smooth or "bulk" not in label)
    return [
        (
            f"conservative {force}",
            checks.conservative_check(
                s.subject, batch, labels, s.gen, force, energy, smooth=facts.smooth
            ),
        )
        for force, energy in facts.conservative.items()
    ]


def _continuity(s: Sample) -> Rows:
    facts = s.subject.facts
    if not facts.energies:
        return Skip("no per-structure scalar output")
    measured = checks.continuity_check(s.subject, facts.species[0], facts.cutoff, facts.energies)
    return [("continuity at cutoff", measured)]


def _finite(s: Sample) -> Rows:
    facts = s.subject.facts
    rng = np.random.default_rng(s.seed + 1)
    edge_cases = [
        ("one atom", Batch.from_ase([S.single_atom(list(facts.species))])),
        (
            "isolated atom",
            Batch.from_ase([S.with_isolated_atom(rng, list(facts.species), facts.cutoff)]),
        ),
        ("empty batch", Batch.empty()),
    ]
    measured = checks.finite_check(s.subject, edge_cases, gradients=facts.differentiable)
    return [("finite on edge cases", measured)]


def _always(facts: Facts) -> bool:
    return True


CHECKS: tuple[Check, ...] = (
    Check(
        "rotation",
        "claimed for O(3) and SO(3)",
        _geometric_claim(lambda f: f.geometric),
        _geometric_tolerance,
        _rotation,
        "every output transforms by D(R) of its irreps under a Haar-random rotation",
    ),
    Check(
        "reflection",
        "claimed for O(3); measured otherwise",
        _geometric_claim(lambda f: f.claim is Group.O3),
        _geometric_tolerance,
        _reflection,
        "parity: a rotation composed with the inversion (a sign bug in a pseudoscalar)",
    ),
    Check(
        "translation",
        "claimed for O(3) and SO(3)",
        _geometric_claim(lambda f: f.geometric),
        _geometric_tolerance,
        _translation,
        "a block reading absolute coordinates",
    ),
    Check(
        "degenerate frames",
        "measured (frame strategies only)",
        lambda f: False,
        _exact,
        _degenerate_frames,
        "frame averaging where PCA eigenvalues repeat: the approximation is reported",
    ),
    *frame_paths.CHECKS,
    Check(
        "permutation",
        "always claimed",
        _always,
        _exact,
        _permutation,
        "dependence on the order atoms are listed in",
    ),
    Check(
        "periodic images",
        "claimed for periodic-capable models",
        _always,
        _exact,
        _periodic,
        "wrapping atoms into an equivalent cell changes nothing",
    ),
    Check(
        "batch independence",
        "always claimed",
        _always,
        _exact,
        _batch_independence,
        "a structure's outputs do not depend on the other structures of its batch",
    ),
    Check(
        "conservative",
        "claimed for gradient (derivative) readouts",
        _always,
        lambda f: tolerances.CONSERVATIVE_RTOL,
        _conservative,
        "forces against a five-point finite difference of the energy",
    ),
    Check(
        "continuity at cutoff",
        "claimed when the model is smooth",
        lambda f: f.smooth,
        lambda f: tolerances.CONTINUITY_RTOL,
        _continuity,
        "a hard cutoff: the energy jumps when a pair crosses it",
    ),
    Check(
        "finite on edge cases",
        "always claimed (single atom, isolated atom, empty batch)",
        _always,
        lambda f: 0.0,
        _finite,
        "NaN or inf in outputs or their gradients on degenerate inputs",
    ),
    *physics.CHECKS,
    *precision.CHECKS,
)

PRECISION_CHECKS: frozenset[str] = frozenset(c.name for c in precision.CHECKS)
"""The rows judged in the model's deployment dtype (float32), against float32 tolerances;
every other claimed row is a float64 figure (search records those as a design's
symmetry error)."""

FULL_CHECKS: tuple[Check, ...] = (*CHECKS, *curves.CHECKS)
"""The default battery plus the measured physicality figures (diatomic curves of every
species pair, a short NVE run): a model call per ~2,000 dimers, so many species cost
seconds; ``geocompose verify --curves`` runs them."""
