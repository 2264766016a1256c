"""A bare point cloud: no edges at all."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from geocompose.nn.graph.base import GraphBuilder, GraphParams
from geocompose.registry import Kind, register
from geocompose.types.bounds import Cutoff


class PointCloudParams(GraphParams):
    type: Literal["point_cloud"] = "point_cloud"
    cutoff: Cutoff = Field(
        default=5.0,
        description="range of the radial basis (Å); no edges are built",
    )


@register(Kind.GRAPH, periodic=True, smooth=True)
class PointCloud(GraphBuilder):
    """Atoms as a set of points with no graph: message-passing blocks see no edges, so
    only blocks that read positions directly (unconstrained networks under a symmetry
    strategy) or per-atom readouts do anything.

    YAML: ``graph: {type: point_cloud}``
    """

    Params = PointCloudParams

    def pairs(self, positions, cell, pbc):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, 3), dtype=np.int64)
