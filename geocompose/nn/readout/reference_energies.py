"""Isolated-atom reference energies (E0s): a fixed energy per species added to an energy.

    E_out = E_in + sum_i e0[z_i]

``values`` gives ``e0`` in eV for every species of the blueprint (e.g. isolated-atom
energies of the reference method, as mace-torch's ``--E0s``), or ``fit``: least squares
on the training split, ``E_s ~ sum_k n_sk e_k`` (geocompose/train/reference.py), filled
in by the trainer before the first step. Either way they are buffers: saved, never
trained. A potential whose blueprint has this term keeps no other per-species shift.

Signature: reads ``add_to`` (a per-structure energy), ``species``, ``batch`` → writes
that energy plus the references. Invariant under every group (it reads no geometry).

YAML::

    readout:
      network_energy: {type: sum, hidden: [16]}
      energy: {type: reference_energies, add_to: network_energy,
               values: {H: -10.7, C: -48.8, O: -102.6}}   # illustrative numbers
      forces: {type: gradient, of: energy}
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from geocompose.nn.block import BuildContext, State
from geocompose.nn.ops.scatter import scatter_sum
from geocompose.nn.readout.energy_term import EnergyTerm, EnergyTermParams
from geocompose.registry import Kind, register
from geocompose.types import TypeRefusal
from geocompose.types import fields as F

__all__ = ["ReferenceEnergies"]


class ReferenceEnergiesParams(EnergyTermParams):
    type: Literal["reference_energies"] = "reference_energies"
    values: dict[str, float] | Literal["fit"] = Field(
        default="fit", description="eV per species, or 'fit' (least squares on the training set)"
    )


@register(Kind.READOUT, smooth=True)
class ReferenceEnergies(EnergyTerm):
    """Per-species reference energies (E0s), given or fitted, added to an energy
    (signature in the module docstring).

    YAML::

        network_energy: {type: sum, hidden: [16]}
        energy: {type: reference_energies, add_to: network_energy, values: fit}
    """

    Params = ReferenceEnergiesParams
    reads = (F.SPECIES, F.BATCH, F.CELL)

    @classmethod
    def check(cls, params, ctx: BuildContext, reader: str) -> TypeRefusal | None:
        if params.values == "fit":
            return None
        missing = [s for s in ctx.species if s not in params.values]
        unknown = [s for s in params.values if s not in ctx.species]
        bad = [s for s, v in params.values.items() if not math.isfinite(v)]
        if missing or unknown or bad:
            what = (
                f"no value for {', '.join(missing)}"
                if missing
                else f"{', '.join(unknown)} not among the species [{', '.join(ctx.species)}]"
                if unknown
                else f"a non-finite value for {', '.join(bad)}"
            )
            return TypeRefusal(
                f"{reader}: values has {what}",
                "give one finite energy in eV per species of embedding.species, or values: fit",
            )
        return None

    def __init__(self, params: ReferenceEnergiesParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        given = params.values != "fit"
        values = [params.values[s] if given else 0.0 for s in ctx.species]
        self.register_buffer("e0", torch.tensor(values, dtype=torch.float64))

    @property
    def fitted(self) -> bool:
        """Whether the trainer fills ``e0`` from the training set."""
        return self.params.values == "fit"

    def term(self, state: State) -> torch.Tensor:
        per_atom = self.e0[state[F.SPECIES]].unsqueeze(-1)  # (N, 1)
        return scatter_sum(per_atom, state[F.BATCH], state[F.CELL].shape[0]).reshape(-1)
