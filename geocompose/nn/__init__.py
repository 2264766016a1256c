"""Modules: graph builders, bases, interactions, readouts, strategies.

Importing this package registers every built-in knob.
"""

from geocompose.nn.embedding import envelope, radial, species  # noqa: F401
from geocompose.nn.graph import complete, knn, point_cloud, radius  # noqa: F401
from geocompose.nn.interaction import faenet, long_range, schnet  # noqa: F401
from geocompose.nn.interaction import cgcnn, dimenet, gemnet  # noqa: F401  (invariant family)
from geocompose.nn.interaction import egnn, gvp, painn, project  # noqa: F401  (Cartesian family; projections)
from geocompose.nn.interaction import mace, nequip, tfn  # noqa: F401  (spherical family)
from geocompose.nn.readout import gradient, pooling  # noqa: F401
from geocompose.nn.readout import vector  # noqa: F401  (direct forces, dipole, moved positions)
from geocompose.nn.readout import tensor  # noqa: F401  (equivariant per-structure tensors)
from geocompose.nn.symmetry import augmentation, builtin, frame_averaging, local_frames  # noqa: F401
from geocompose.nn.model import GeometricModel

__all__ = ["GeometricModel"]
