"""What every graph builder shares: topology from a neighbour list, geometry in torch.

Topology (who is whose neighbour, through which lattice shift) is discrete, computed
on detached float64 coordinates and cached on the Batch, so it is built once per batch
and reused across layers, epochs and the verifier's checks. Geometry (edge vectors and
lengths) is recomputed in torch from positions and cell, so forces and stress come out
of autograd through the shift vectors.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from geocompose.nn.block import Block, BuildContext, State
from geocompose.nn.graph.neighbours import edge_index_array, edge_vectors
from geocompose.registry import KnobModel
from geocompose.types import FieldType, Level, Signature, TypeRefusal, discrete, require, scalars
from geocompose.types import fields as F
from geocompose.types.bounds import Cutoff
from geocompose.types.group import Group
from geocompose.types.irreps import parse_irreps

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # receivers (E,), senders (E,), shifts (E, 3)


class GraphParams(KnobModel):
    """Params every graph builder shares: a cutoff radius, required unless a builder
    gives it a default (the compiler hands it to bases and envelopes as ``ctx.cutoff``)."""

    cutoff: Cutoff = Field(description="cutoff radius in Å")


class GraphBuilder(Block):
    """Base of graph builders; a subclass defines :meth:`pairs` for one structure."""

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext) -> Signature | TypeRefusal:
        reads = {}
        for name in (F.POSITIONS, F.CELL, F.PBC, F.BATCH):
            found = require(upstream, name, f"the '{params.type}' graph builder")
            if isinstance(found, TypeRefusal):
                return found
            reads[name] = found
        return Signature(
            reads=reads,
            writes={
                F.EDGE_INDEX: discrete(Level.EDGE),
                F.EDGE_SHIFTS: discrete(Level.EDGE),
                F.EDGE_VECTORS: FieldType(parse_irreps("1o"), Level.EDGE),
                F.EDGE_LENGTHS: scalars(1, Level.EDGE),
            },
            guarantee=Group.O3,
        )

    @classmethod
    def reach(cls, params) -> float:
        """The longest edge this builder can make (Å): an atom farther than this from
        every other atom has no edge at all (the verifier's locality check)."""
        return float(params.cutoff)

    def pairs(self, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> Pairs:
        """Neighbour pairs of one structure (float64 numpy in, int64 numpy out)."""
        raise NotImplementedError

    @property
    def cache_key(self) -> tuple:
        """Two builders with equal keys produce the same topology for the same batch."""
        return (type(self).__name__, self.params.model_dump_json())

    def topology(self, batch) -> dict[str, torch.Tensor]:
        """Edge index and shifts for a whole batch, cached on the batch."""
        return batch.cached(self.cache_key, lambda: self._topology(batch, self.pairs))

    def _topology(self, batch, pairs) -> dict[str, torch.Tensor]:
        """Run ``pairs(positions, cell, pbc)`` per structure and join the edge sets."""
        positions = batch.positions.detach().cpu().double().numpy()  # one conversion
        cells = batch.cell.detach().cpu().double().numpy()
        pbcs = batch.pbc.cpu().numpy()
        receivers, senders, shifts = [], [], []
        for s, (start, stop) in enumerate(batch.ranges()):
            r, j, sh = pairs(positions[start:stop], cells[s], pbcs[s])
            receivers.append(_offset(r, start))
            senders.append(_offset(j, start))
            shifts.append(np.asarray(sh, dtype=np.int64).reshape(-1, 3))
        if len(receivers) == 1:  # the common case (MD, one structure): no copy, no joins
            edge_index = edge_index_array(receivers[0], senders[0])
            edge_shifts = shifts[0]
        elif receivers:
            edge_index = np.stack([np.concatenate(senders), np.concatenate(receivers)])
            edge_shifts = np.concatenate(shifts)
        else:
            edge_index = np.zeros((2, 0), dtype=np.int64)
            edge_shifts = np.zeros((0, 3), dtype=np.int64)
        device = batch.positions.device
        return {
            F.EDGE_INDEX: torch.from_numpy(edge_index).to(device),
            F.EDGE_SHIFTS: torch.from_numpy(np.ascontiguousarray(edge_shifts)).to(device),
        }

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        senders, receivers = state[F.EDGE_INDEX]
        # x_j - x_i + n @ cell_b: differentiable in positions and in the cell (stress).
        vectors = edge_vectors(
            state[F.POSITIONS],
            state[F.CELL][state[F.BATCH][receivers]],
            receivers,
            senders,
            state[F.EDGE_SHIFTS],
        )
        return {
            F.EDGE_INDEX: state[F.EDGE_INDEX],
            F.EDGE_SHIFTS: state[F.EDGE_SHIFTS],
            F.EDGE_VECTORS: vectors,
            F.EDGE_LENGTHS: safe_norm(vectors),
        }


def _offset(index, start: int) -> np.ndarray:
    """int64 atom indices of one structure, shifted to its place in the batch."""
    index = np.asarray(index, dtype=np.int64)
    return index + start if start else index


def safe_norm(vectors: torch.Tensor) -> torch.Tensor:
    """(E, 3) → (E, 1) lengths whose gradient is 0, not NaN, for a zero vector."""
    squared = (vectors * vectors).sum(dim=-1, keepdim=True)
    nonzero = squared > 0
    return torch.where(nonzero, torch.sqrt(torch.where(nonzero, squared, 1.0)), 0.0)
