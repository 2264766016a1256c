"""Tolerances of the verifier, per dtype (e3nn keeps a table like this).

Exact claims are checked in float64. A relative error is
``max |observed - expected| / max(max |expected|, SCALE_FLOOR)``.
"""

from __future__ import annotations

import torch

# Relative error allowed for an exact symmetry claim.
EXACT_RTOL: dict[torch.dtype, float] = {torch.float64: 1e-9, torch.float32: 1e-4}

# Outputs smaller than this are compared absolutely (avoids dividing by ~0).
SCALE_FLOOR = 1e-6

# Forces vs a central finite difference of the energy, step FD_STEP Å: the truncation
# error is O(step^2 * third derivative), so this is looser than symmetry checks.
FD_STEP = 1e-4
CONSERVATIVE_RTOL = 1e-5

# Continuity across the cutoff: energy jump when one pair distance crosses the cutoff by
# +-CUTOFF_DELTA, relative to the energy's own scale.
CUTOFF_DELTA = 1e-7
CONTINUITY_RTOL = 1e-5


def exact_rtol(dtype: torch.dtype) -> float:
    return EXACT_RTOL.get(dtype, 1e-4)
