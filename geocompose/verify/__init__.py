"""Verification: does a model have the symmetry and physics its blueprint (or its
caller, for a black box) claims?"""

from geocompose.verify.battery import CHECKS, FULL_CHECKS, PRECISION_CHECKS
from geocompose.verify.calculator import calculator_subject
from geocompose.verify.engine import verify
from geocompose.verify.module import verify_module
from geocompose.verify.record import Check
from geocompose.verify.report import CheckResult, Verdict, VerificationReport
from geocompose.verify.subject import Facts, Subject

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
