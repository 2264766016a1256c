"""Public test helpers: ``assert_symmetry`` and hypothesis strategies for users' own tests."""

from geocompose.testing.assertions import assert_symmetry
from geocompose.testing.params import params_strategy
from geocompose.testing.strategies import compositions, rotations, structures
from geocompose.verification.tolerances import EXACT_RTOL, exact_rtol

__all__ = [
    "EXACT_RTOL",
    "assert_symmetry",
    "compositions",
    "exact_rtol",
    "params_strategy",
    "rotations",
    "structures",
]
