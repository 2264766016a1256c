"""Modules: graph builders, embeddings and bases, interactions, readouts, strategies.

Importing this package registers every built-in knob. Interaction families: invariant
(schnet, long_range, cgcnn, dimenet, gemnet), Cartesian (egnn, gvp, painn; project),
spherical (mace, nequip, tfn), unconstrained (faenet). Readouts: pooling, gradient
(forces, stress), vector (direct forces, dipole, moved positions), tensor (equivariant
per-structure tensors).
"""

from geocompose.nn.embedding import edge, envelope, harmonics, radial, species  # noqa: F401
from geocompose.nn.graph import complete, knn, point_cloud, radius  # noqa: F401
from geocompose.nn.interaction import (  # noqa: F401
    cgcnn,
    dimenet,
    egnn,
    faenet,
    gemnet,
    gvp,
    long_range,
    mace,
    nequip,
    painn,
    project,
    schnet,
    tfn,
)
from geocompose.nn.model import GeometricModel
from geocompose.nn.readout import (  # noqa: F401
    gradient,
    pooling,
    reference_energies,
    tensor,
    vector,
    zbl,
)
from geocompose.nn.symmetry import (  # noqa: F401
    augmentation,
    builtin,
    frame_averaging,
    learned_canonicalisation,
    local_frames,
    sign_frames,
    weighted_frames,
)

__all__ = ["GeometricModel"]
