"""``assert_symmetry``: the verifier as a one-line pytest assertion."""

from __future__ import annotations

from geocompose.errors import VerificationFailed
from geocompose.verification import VerificationReport, verify


def assert_symmetry(model_or_blueprint, *, samples: int = 2, seed: int = 0) -> VerificationReport:
    """Verify every claim of a model or blueprint; raise with the full report if one fails.

    >>> assert_symmetry("blueprints/schnet.yaml")  # doctest: +SKIP
    """
    report = verify(model_or_blueprint, samples=samples, seed=seed)
    if not report.passed:
        raise VerificationFailed(report.text())
    return report
