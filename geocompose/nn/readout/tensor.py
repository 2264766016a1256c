"""Equivariant per-structure tensors: a linear map of node irreps, pooled per structure."""

from __future__ import annotations

from typing import Literal

import torch
from e3nn import o3
from pydantic import Field

from geocompose.nn.block import Block, BuildContext, State
from geocompose.nn.ops.scatter import scatter_mean, scatter_sum
from geocompose.registry import Kind, KnobModel, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal, require
from geocompose.types import fields as F
from geocompose.types.group import Group
from geocompose.types.irreps import IrrepsField


class TensorReadoutParams(KnobModel):
    type: Literal["tensor"] = "tensor"
    irreps: IrrepsField = Field(default="1x0e + 1x2e", validate_default=True)
    pool: Literal["sum", "mean"] = "sum"
    per_atom: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="also output the per-atom contributions under this name",
    )


@register(Kind.READOUT)
class TensorReadout(Block):
    """A per-structure tensor of any irreps: ``T = pool_i W h_i`` (e3nn ``o3.Linear``).

    ``W`` only connects equal irreps, so the output transforms exactly as ``irreps`` say:
    ``1x2e`` is a traceless symmetric 3x3 tensor (the anisotropic part of a
    polarisability), ``1x0e + 1x2e`` a full symmetric one (convert with e3nn's
    ``io.CartesianTensor("ij=ji")``), ``1x1e`` a pseudo-vector. Every requested irrep
    must be present in ``node_features``; otherwise the readout is refused, since it
    could only ever output zeros.

    Signature: reads ``node_features`` (must contain each irrep of ``irreps``), ``batch``,
    ``cell`` → writes ``<output>: irreps per structure`` (and per atom with ``per_atom``).

    YAML: ``polarizability: {type: tensor, irreps: "1x0e + 1x2e", pool: sum}``
    """

    Params = TensorReadoutParams

    @classmethod
    def signature(cls, params: TensorReadoutParams, upstream, ctx: BuildContext):
        reader = f"readout '{ctx.output}'"
        reads = {}
        for name in (F.NODE_FEATURES, F.BATCH, F.CELL):
            found = require(upstream, name, reader)
            if isinstance(found, TypeRefusal):
                return found
            reads[name] = found
        have = {ir for _, ir in reads[F.NODE_FEATURES].irreps}
        missing = [str(ir) for _, ir in params.irreps if ir not in have]
        if missing:
            return TypeRefusal(
                f"{reader} outputs {params.irreps}, but no field provides {', '.join(missing)}: "
                f"{F.NODE_FEATURES} is {reads[F.NODE_FEATURES].irreps}",
                f"add {', '.join(missing)} channels to the last interaction's features (a spherical "
                "interaction with embedding.angular.l_max at least that l)",
            )
        writes = {ctx.output: FieldType(params.irreps, Level.STRUCTURE)}
        if params.per_atom:
            writes[params.per_atom] = FieldType(params.irreps, Level.NODE)
        return Signature(
            reads=reads, writes=writes, guarantee=Group.O3, extensive=params.pool == "sum"
        )

    def __init__(self, params: TensorReadoutParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        self.linear = o3.Linear(self.irreps_in[F.NODE_FEATURES], params.irreps)
        self.pool = scatter_sum if params.pool == "sum" else scatter_mean
        self.output = ctx.output

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        per_atom = self.linear(state[F.NODE_FEATURES])  # (N, irreps.dim)
        out = {self.output: self.pool(per_atom, state[F.BATCH], state[F.CELL].shape[0])}
        if self.params.per_atom:
            out[self.params.per_atom] = per_atom
        return out
