"""Invariant readouts: an MLP on the scalar channels of each atom, pooled per structure."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from geocompose.nn.activations import Activation, mlp
from geocompose.nn.block import Block, BuildContext, State
from geocompose.nn.ops.scatter import scatter_mean, scatter_sum
from geocompose.registry import Kind, KnobModel, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal, require, scalars
from geocompose.types import fields as F
from geocompose.types.bounds import Size
from geocompose.types.group import Group
from geocompose.types.irreps import scalar_part


class PoolingParams(KnobModel):
    hidden: list[Size] = Field(default_factory=lambda: [64])
    activation: Activation = "silu"
    per_atom: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="also output the per-atom contributions under this name",
    )
    layer_energy: bool = Field(
        default=False,
        description="add the interactions' per-layer energy terms (`layer_energy`, "
        "written by layers with `layer_readout: true`) to the per-atom terms",
    )


class PoolingReadout(Block):
    """Shared body of ``sum`` and ``mean``: ``y = pool_i MLP(h_i^{0e})``.

    Reads only the ``0e`` channels of ``node_features`` (an invariant projection), so it
    follows any family; writes one ``0e`` per structure, and per atom with ``per_atom``.
    With ``layer_energy: true`` it adds the per-layer energy terms of the interactions
    (MACE's ``layer_readout``) to its per-atom terms.
    """

    pool = staticmethod(scatter_sum)

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        reads = {}
        for name in (F.NODE_FEATURES, F.BATCH):
            found = require(upstream, name, f"readout '{ctx.output}'")
            if isinstance(found, TypeRefusal):
                return found
            reads[name] = found
        if params.layer_energy:
            found = require(upstream, F.LAYER_ENERGY, f"readout '{ctx.output}' (layer_energy)")
            if isinstance(found, TypeRefusal):
                return TypeRefusal(found.message, "set layer_readout: true on the interactions")
            reads[F.LAYER_ENERGY] = found
        invariant = scalar_part(reads[F.NODE_FEATURES].irreps)
        if invariant.dim == 0:
            return TypeRefusal(
                f"readout '{ctx.output}' pools the 0e channels of {F.NODE_FEATURES}, "
                f"but upstream gives {reads[F.NODE_FEATURES].irreps} with none",
                "keep some 0e channels in the last interaction's features",
            )
        writes = {ctx.output: scalars(1, Level.STRUCTURE)}
        if params.per_atom:
            writes[params.per_atom] = scalars(1, Level.NODE)
        # A mean over atoms is intensive: far-apart copies do not add up.
        extensive = cls.pool is not scatter_mean
        return Signature(reads=reads, writes=writes, guarantee=Group.O3, extensive=extensive)

    def __init__(self, params: PoolingParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        irreps = self.irreps_in[F.NODE_FEATURES]
        # Indices of the 0e channels inside the flat feature vector.
        index = [
            i
            for sl, (mul, ir) in zip(irreps.slices(), irreps)
            if ir.l == 0 and ir.p == 1
            for i in range(sl.start, sl.stop)
        ]
        self.register_buffer("scalar_index", torch.tensor(index, dtype=torch.long))
        self.head = mlp([len(index), *params.hidden, 1], params.activation)
        self.output = ctx.output

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        features = state[F.NODE_FEATURES].index_select(-1, self.scalar_index)
        per_atom = self.head(features)  # (N, 1)
        if F.LAYER_ENERGY in self.irreps_in:
            per_atom = per_atom + state[F.LAYER_ENERGY]
        num_structures = state[F.CELL].shape[0]
        out = {self.output: self.pool(per_atom, state[F.BATCH], num_structures)}
        if self.params.per_atom:
            out[self.params.per_atom] = per_atom
        return out


class SumReadoutParams(PoolingParams):
    type: Literal["sum"] = "sum"


@register(Kind.READOUT)
class SumReadout(PoolingReadout):
    """Extensive property (energy): sum of per-atom MLP outputs.

    YAML: ``energy: {type: sum, hidden: [64], per_atom: atomic_energy}``
    """

    Params = SumReadoutParams
    pool = staticmethod(scatter_sum)


class MeanReadoutParams(PoolingParams):
    type: Literal["mean"] = "mean"


@register(Kind.READOUT)
class MeanReadout(PoolingReadout):
    """Intensive property (e.g. band gap, energy per atom): mean of per-atom outputs.

    YAML: ``gap: {type: mean}``
    """

    Params = MeanReadoutParams
    pool = staticmethod(scatter_mean)


def structure_scalar(upstream, name: str, reader: str) -> FieldType | TypeRefusal:
    """A ``1x0e`` per-structure field that a derivative readout differentiates."""
    found = require(upstream, name, reader)
    if isinstance(found, TypeRefusal):
        return found
    if found.level is not Level.STRUCTURE or found.irreps is None or found.irreps.dim != 1:
        return TypeRefusal(
            f"{reader} differentiates `{name}`, which is {found}",
            "point it at a per-structure scalar such as an energy from a 'sum' readout",
        )
    return found
