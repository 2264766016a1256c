"""Physical energy terms added to a learned energy: the shared body of ``zbl`` and
``reference_energies``.

A term writes ``E_out = E_in + T / energy_unit`` where ``E_in`` is the per-structure
energy named by ``add_to`` and ``T`` is in eV. ``energy_unit`` (a buffer, 1 by default)
is the eV per unit of the network's energy: a training
:class:`~geocompose.train.potential.Potential` multiplies the model's energy by its
scale (the RMS of the training forces) and sets ``energy_unit`` to that scale, so the
term reaches the physical energy, and its gradient the forces, unscaled. Written under
its own output name, the term's readout is what forces differentiate::

    readout:
      network_energy: {type: sum, hidden: [16]}
      energy: {type: zbl, add_to: network_energy}
      forces: {type: gradient, of: energy}
"""

from __future__ import annotations

import torch
from pydantic import Field

from geocompose.nn.block import Block, BuildContext, State
from geocompose.nn.readout.pooling import structure_scalar
from geocompose.registry import KnobModel
from geocompose.types import Signature, TypeRefusal
from geocompose.types.signature import require_all
from geocompose.types import fields as F
from geocompose.types.group import Group

__all__ = ["EnergyTerm", "EnergyTermParams", "set_energy_unit"]


class EnergyTermParams(KnobModel):
    add_to: str = Field(
        default="network_energy",
        pattern=r"^[a-z][a-z0-9_]*$",
        # Drawn compositions name their learned energy `energy` (geocompose.testing).
        examples=["energy"],
        description="the per-structure energy output this term is added to",
    )


class EnergyTerm(Block):
    """``E_out = E_in + term(state) / energy_unit``; subclasses give ``reads`` and ``term``.

    ``term`` returns (B,) energies in eV, invariant by construction (it may read only
    invariant fields: distances, species).
    """

    reads: tuple[str, ...] = (F.BATCH,)

    @classmethod
    def signature(cls, params: EnergyTermParams, upstream, ctx: BuildContext):
        reader = f"readout '{ctx.output}'"
        if params.add_to == ctx.output:
            return TypeRefusal(
                f"{reader} adds to `{params.add_to}`, its own output",
                f"write the learned energy under another name, e.g. `network_energy`, and set add_to to it",
            )
        energy = structure_scalar(upstream, params.add_to, reader)
        if isinstance(energy, TypeRefusal):
            return energy
        reads = require_all(upstream, cls.reads, reader)
        if isinstance(reads, TypeRefusal):
            return reads
        refusal = cls.check(params, ctx, reader)
        if refusal is not None:
            return refusal
        return Signature(
            reads={params.add_to: energy, **reads},
            writes={ctx.output: energy},
            guarantee=Group.O3,
        )

    @classmethod
    def check(cls, params, ctx: BuildContext, reader: str) -> TypeRefusal | None:
        """Refuse params that do not fit the rest of the blueprint (default: none)."""
        return None

    def __init__(self, params: EnergyTermParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        self.output = ctx.output
        self.register_buffer("energy_unit", torch.ones(()))

    def term(self, state: State) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, state: State) -> dict[str, torch.Tensor]:
        base = state[self.params.add_to]  # (B, 1)
        term = self.term(state).to(base.dtype).view(-1, 1) / self.energy_unit
        return {self.output: base + term}


def set_energy_unit(model: torch.nn.Module, unit: float) -> None:
    """Tell every :class:`EnergyTerm` in ``model`` how many eV one network unit is."""
    for module in model.modules():
        if isinstance(module, EnergyTerm):
            module.energy_unit.fill_(float(unit))
