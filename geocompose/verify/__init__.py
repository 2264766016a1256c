"""Verification: does a compiled model have the symmetry its blueprint claims?"""

from geocompose.verify.engine import verify
from geocompose.verify.report import CheckResult, Verdict, VerificationReport

__all__ = ["CheckResult", "Verdict", "VerificationReport", "verify"]
