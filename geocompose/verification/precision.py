"""Deployment precision: the symmetry checks again in the model's deployed dtype (float32).

A model exact in float64 can still fail where it is used: float32 positions far from
the origin keep fewer digits, and an expression that cancels catastrophically (e.g. a
distance as ``|x_i|^2 + |x_j|^2 - 2 x_i.x_j``) loses all of them. The checks rotate
the sampled structures and translate them by 1, 40 and 1,000 Å in float32 and compare
with the float32 outputs at the origin, against the float32 tolerances stated in
:mod:`geocompose.verification.tolerances`.
"""

from __future__ import annotations

import torch

from geocompose.verification import checks, groups, tolerances
from geocompose.verification.record import Check, Rows, Sample, Skip

DEPLOYED = torch.float32


def _claimed(facts) -> bool:
    return facts.geometric and facts.exact


def _deployed(s: Sample, tied: bool):
    """The subject in float32 and the sampled structures cast to it: the generic ones,
    or (``tied``) only the lattices with tied distances; a Skip when there are none."""
    if s.subject.at_dtype is None:
        return Skip("the model runs in one dtype only (no float32 copy to check)")
    batch, labels = s.sub_batch(lambda i, label, atoms: ("bulk" in label) is tied)
    if not labels:
        return Skip("no lattice with tied distances sampled")
    return s.subject.at_dtype(DEPLOYED), batch.to(dtype=DEPLOYED), labels


def _rotation(s: Sample, tied: bool, name: str) -> Rows:
    deployed = _deployed(s, tied)
    if isinstance(deployed, Skip):
        return deployed
    subject, batch, labels = deployed
    gen = torch.Generator().manual_seed(s.seed + 32)
    rotation = groups.haar_rotation(gen, DEPLOYED)
    return [(name, checks.equivariance(subject, batch, labels, rotation, None))]


def rotation_float32(s: Sample) -> Rows:
    return _rotation(s, False, "float32 rotation")


def rotation_float32_tied(s: Sample) -> Rows:
    """Where symmetry makes features cancel (a site of a cubic lattice), float32 noise is
    all that is left and normalisations amplify it: reported, not judged."""
    return _rotation(s, True, "float32 rotation, tied lattice")


def translation_float32(distance: float):
    def measure(s: Sample) -> Rows:
        deployed = _deployed(s, False)
        if isinstance(deployed, Skip):
            return deployed
        subject, batch, labels = deployed
        gen = torch.Generator().manual_seed(s.seed + 33)
        direction = torch.randn(3, generator=gen, dtype=torch.float64)
        shift = (distance * direction / direction.norm()).to(DEPLOYED)
        eye = torch.eye(3, dtype=DEPLOYED)
        measured = checks.equivariance(subject, batch, labels, eye, shift)
        return [(f"float32 translation {distance:g} Å", measured)]

    return measure


CHECKS: tuple[Check, ...] = (
    Check(
        "float32 rotation",
        "claimed for exact O(3)/SO(3) claims of compiled models",
        _claimed,
        lambda f: tolerances.exact_rtol(DEPLOYED),
        rotation_float32,
        "symmetry in the deployed dtype, on the generic structures",
    ),
    Check(
        "float32 rotation, tied lattice",
        "measured",
        lambda f: False,
        lambda f: tolerances.exact_rtol(DEPLOYED),
        rotation_float32_tied,
        "a bulk metal in float32: features that cancel by symmetry leave only noise, which "
        "normalisations amplify; kNN ties are decided at float32 precision",
    ),
    *(
        Check(
            f"float32 translation {d:g} Å",
            "claimed for exact O(3)/SO(3) claims of compiled models",
            _claimed,
            lambda f, d=d: tolerances.float32_translation_rtol(d),
            translation_float32(d),
            "precision lost at large coordinates (catastrophic cancellation)",
        )
        for d in tolerances.FLOAT32_SHIFTS
    ),
)
