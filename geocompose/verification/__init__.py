"""Verification: does a model have the symmetry and physics its blueprint (or its
caller, for a black box) claims?"""

from geocompose.verification.battery import CHECKS, FULL_CHECKS, PRECISION_CHECKS
from geocompose.verification.calculator import calculator_subject
from geocompose.verification.engine import verify
from geocompose.verification.module import verify_module
from geocompose.verification.record import Check
from geocompose.verification.report import CheckResult, Verdict, VerificationReport
from geocompose.verification.subject import Facts, Subject

__all__ = [
    "CHECKS",
    "FULL_CHECKS",
    "PRECISION_CHECKS",
    "Check",
    "CheckResult",
    "Facts",
    "Subject",
    "Verdict",
    "VerificationReport",
    "calculator_subject",
    "verify",
    "verify_module",
]
