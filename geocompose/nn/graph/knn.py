"""k-nearest-neighbour graph with order-independent tie handling."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from geocompose.nn.graph.base import GraphBuilder, GraphParams
from geocompose.nn.graph.neighbours import knn_pairs, knn_tie_rtol
from geocompose.registry import Kind, register
from geocompose.types.bounds import Cutoff, Size


class KnnGraphParams(GraphParams):
    type: Literal["knn"] = "knn"
    k: Size = 12
    cutoff: Cutoff = Field(description="never connect beyond this radius (Å)")


@register(Kind.GRAPH, periodic=True, smooth=False)
class KnnGraph(GraphBuilder):
    """Each atom receives from its ``k`` nearest neighbours (within ``cutoff``).

    Ties at the k-th distance are *all* kept (relative tolerance 1e-9 in float64;
    1.2e-5 for a float32 batch, whose rounded coordinates split ties by ~1e-7), so the
    graph does not depend on atom order; peer codes that cut at exactly k break
    permutation symmetry when distances tie (lattices, symmetric molecules). A kNN graph is not
    smooth: an atom entering the k nearest adds an edge with nonzero weight unless the
    envelope is zero there, so the model makes no continuity claim from it.

    YAML: ``graph: {type: knn, k: 12, cutoff: 6.0}``
    """

    Params = KnnGraphParams

    def pairs(self, positions, cell, pbc):
        return knn_pairs(positions, cell, pbc, self.params.k, self.params.cutoff)

    def topology(self, batch) -> dict[str, torch.Tensor]:
        # Ties are decided at the precision the coordinates were given in.
        rtol = knn_tie_rtol(batch.positions.dtype)
        k, cutoff = self.params.k, self.params.cutoff
        return batch.cached(
            self.cache_key,
            lambda: self._topology(batch, lambda p, c, b: knn_pairs(p, c, b, k, cutoff, rtol)),
        )
