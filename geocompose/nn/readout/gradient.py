"""Conservative forces: ``F = -dE/dx`` by autograd."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from geocompose.nn.block import Block, BuildContext, State
from geocompose.nn.readout.pooling import structure_scalar
from geocompose.registry import Kind, KnobModel, register
from geocompose.types import FieldType, Level, Signature, TypeRefusal, require
from geocompose.types import fields as F
from geocompose.types.group import Group
from geocompose.types.irreps import parse_irreps


class GradientForcesParams(KnobModel):
    type: Literal["gradient"] = "gradient"
    of: str = Field(default="energy", description="the per-structure energy to differentiate")


@register(Kind.READOUT, derivative=True)
class GradientForces(Block):
    """Forces as the negative gradient of an energy output, ``F_i = -dE/dx_i``.

    Conservative by construction and equivariant whenever the energy is invariant
    (the gradient of an invariant is a ``1o`` field). The model turns on gradients
    for positions before its first block when any derivative readout is present.

    YAML: ``forces: {type: gradient, of: energy}``
    """

    Params = GradientForcesParams

    @classmethod
    def signature(cls, params, upstream, ctx: BuildContext):
        reader = f"readout '{ctx.output}'"
        energy = structure_scalar(upstream, params.of, reader)
        if isinstance(energy, TypeRefusal):
            return energy
        positions = require(upstream, F.POSITIONS, reader)
        return Signature(
            reads={params.of: energy, F.POSITIONS: positions},
            writes={ctx.output: FieldType(parse_irreps("1o"), Level.NODE)},
            guarantee=Group.O3,
        )

    def __init__(self, params: GradientForcesParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        self.output = ctx.output

    def forward(self, state: State, keep_graph: bool = True) -> dict[str, torch.Tensor]:
        """Forces; ``keep_graph=False`` lets the backward pass free each activation as it
        goes (the model passes it when nobody will differentiate the outputs: on a
        512-atom SchNet cell that saves ~10% of the forces time, benchmarks/schnet.py).

        In a strained call (the state carries ``strain``) the gradient of ``energy`` is
        taken with respect to the strain too, in the same backward pass, and written as
        ``strain_derivative``: stress costs no second pass over the graph (nor, in
        training, a second double-backward graph)."""
        positions = state[F.POSITIONS]
        strain = state.get(F.STRAIN) if self.params.of == F.ENERGY else None
        grads = torch.autograd.grad(
            state[self.params.of].sum(),
            [positions] if strain is None else [positions, strain],
            create_graph=self.training,  # training on forces needs second derivatives
            # Training, a later derivative readout, or a caller differentiating the
            # outputs needs the graph again.
            retain_graph=self.training or keep_graph,
            allow_unused=True,  # an energy that ignores geometry has zero forces
        )
        out = {self.output: -grads[0] if grads[0] is not None else torch.zeros_like(positions)}
        if strain is not None:
            out[F.STRAIN_DERIVATIVE] = (
                grads[1] if grads[1] is not None else torch.zeros_like(strain)
            )
        return out
