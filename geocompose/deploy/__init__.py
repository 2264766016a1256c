"""Running a trained checkpoint where users simulate: ASE, TorchSim, LAMMPS, i-PI.

Every engine adapter loads its potential through :func:`load_for_inference` and checks
its structures with :func:`check_structures`, so dtype handling and errors are the same
in all of them (see ``docs/deployment.md``).
"""

from geocompose.deploy.inference import (
    DeployError,
    StressUnavailable,
    check_structures,
    load_for_inference,
    resolve_dtype,
)

__all__ = [
    "DeployError",
    "StressUnavailable",
    "check_structures",
    "load_for_inference",
    "resolve_dtype",
]
