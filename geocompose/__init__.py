"""geocompose: typed YAML blueprints → geometric GNNs → symmetry proofs.

>>> import geocompose
>>> model = geocompose.compile("blueprints/schnet.yaml")  # doctest: +SKIP
>>> report = geocompose.verify(model)                      # doctest: +SKIP
"""

from geocompose import nn as _builtin_blocks  # noqa: F401  (registers the built-in knobs)
from geocompose.compiler import check, compile, load
from geocompose.data import Batch
from geocompose.errors import BlueprintError, GeocomposeError, StructureError, VerificationFailed
from geocompose.nn.model import GeometricModel
from geocompose.registry import REGISTRY, Family, Group, Kind, KnobModel, register
from geocompose.verification.engine import verify  # the function; the package is `verification`

__all__ = [
    "REGISTRY",
    "Batch",
    "BlueprintError",
    "Family",
    "GeocomposeError",
    "GeometricModel",
    "Group",
    "Kind",
    "KnobModel",
    "StructureError",
    "VerificationFailed",
    "check",
    "compile",
    "load",
    "register",
    "verify",
]
__version__ = "0.1.0"
