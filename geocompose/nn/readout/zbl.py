"""ZBL: the universal short-range screened-nuclear repulsion, smoothly cut off.

    E_ZBL = 1/2 sum_{i != j} k_e Z_i Z_j / r_ij  phi(r_ij / a_ij)  u(r_ij / c_ij)

with ``k_e = 14.399645 eV Å`` (e^2 / 4 pi eps_0), the universal screening length
``a_ij = 0.46850 Å / (Z_i^0.23 + Z_j^0.23)`` (0.8854 Bohr radii over the same sum) and
the universal screening function

    phi(x) = 0.18175 e^{-3.19980 x} + 0.50986 e^{-0.94229 x}
           + 0.28022 e^{-0.40290 x} + 0.02817 e^{-0.20162 x}

(Ziegler, Biersack and Littmark, *The Stopping and Range of Ions in Solids*, 1985).
``u`` is the polynomial envelope of order ``p`` (DimeNet's, as in the graph embedding)
on ``c_ij = cutoff_factor * (R_i + R_j)``, ``R`` the covalent radii of ASE
(Cordero et al. 2008): the repulsion acts only closer than a bond and goes to zero with
``p - 1`` continuous derivatives, so forces stay continuous. This follows mace-torch's
ZBL pair term (covalent-radius cutoff, polynomial envelope). A pair cutoff larger than
the graph's is refused (those pairs would be missing).

Signature: reads ``add_to`` (a per-structure energy), ``edge_index``, ``edge_lengths``,
``species``, ``batch`` → writes that energy plus the repulsion. O(3)-invariant (distances
only), permutation-invariant, smooth.

YAML::

    readout:
      network_energy: {type: sum, hidden: [16]}
      energy: {type: zbl, add_to: network_energy}
      forces: {type: gradient, of: energy}
"""

from __future__ import annotations

from typing import Literal

import ase.data
import torch
from pydantic import Field, PositiveFloat, PositiveInt

from geocompose.nn.block import BuildContext, State
from geocompose.nn.embedding.envelope import polynomial_envelope
from geocompose.nn.ops.scatter import scatter_sum
from geocompose.nn.readout.energy_term import EnergyTerm, EnergyTermParams
from geocompose.registry import Kind, register
from geocompose.types import TypeRefusal
from geocompose.types import fields as F

__all__ = ["ZBLRepulsion", "zbl_pair_energy"]

COULOMB = 14.399645  # e^2 / (4 pi eps_0) in eV Å
SCREENING_LENGTH = 0.46850  # 0.8854 a_0 in Å
PHI = ((0.18175, 3.19980), (0.50986, 0.94229), (0.28022, 0.40290), (0.02817, 0.20162))


def zbl_pair_energy(r: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Unscreened-by-envelope ZBL energy (eV) of pairs at distance ``r`` (Å)."""
    a = SCREENING_LENGTH / (z1**0.23 + z2**0.23)
    x = r / a
    phi = sum(c * torch.exp(-d * x) for c, d in PHI)
    return COULOMB * z1 * z2 / r * phi


class ZBLParams(EnergyTermParams):
    type: Literal["zbl"] = "zbl"
    cutoff_factor: PositiveFloat = Field(
        default=1.0, description="pair cutoff in units of the sum of the covalent radii"
    )
    p: PositiveInt = Field(default=6, description="order of the polynomial envelope")


@register(Kind.READOUT, smooth=True)
class ZBLRepulsion(EnergyTerm):
    """Ziegler–Biersack–Littmark pair repulsion added to an energy (equation, cutoff
    and signature in the module docstring).

    YAML::

        network_energy: {type: sum, hidden: [16]}
        energy: {type: zbl, add_to: network_energy, cutoff_factor: 1.0, p: 6}
    """

    Params = ZBLParams
    reads = (F.EDGE_INDEX, F.EDGE_LENGTHS, F.SPECIES, F.BATCH, F.CELL)

    @staticmethod
    def pair_cutoffs(params: ZBLParams, species) -> torch.Tensor:
        """(S, S) pair cutoffs in Å for the blueprint's species."""
        radii = torch.tensor(
            [ase.data.covalent_radii[ase.data.atomic_numbers[s]] for s in species],
            dtype=torch.float64,
        )
        return params.cutoff_factor * (radii[:, None] + radii[None, :])

    @classmethod
    def check(cls, params: ZBLParams, ctx: BuildContext, reader: str) -> TypeRefusal | None:
        largest = float(cls.pair_cutoffs(params, ctx.species).max())
        if ctx.cutoff is not None and largest > ctx.cutoff:
            return TypeRefusal(
                f"{reader}: the largest ZBL pair cutoff is {largest:.3f} Å "
                f"(cutoff_factor {params.cutoff_factor} x covalent radii), beyond the "
                f"graph's cutoff {ctx.cutoff} Å, so some repelling pairs would be missing",
                "lower cutoff_factor or raise the graph's cutoff",
            )
        return None

    def __init__(self, params: ZBLParams, upstream, ctx: BuildContext):
        super().__init__(params, upstream, ctx)
        numbers = [float(ase.data.atomic_numbers[s]) for s in ctx.species]
        self.register_buffer("numbers", torch.tensor(numbers, dtype=torch.float64))
        self.register_buffer("cutoffs", self.pair_cutoffs(params, ctx.species))

    def term(self, state: State) -> torch.Tensor:
        senders, receivers = state[F.EDGE_INDEX]
        species = state[F.SPECIES]
        r = state[F.EDGE_LENGTHS].reshape(-1)
        # Coincident atoms: a finite (huge) energy with a finite gradient, never inf/NaN.
        r = r.clamp(min=1e-4)
        s1, s2 = species[senders], species[receivers]
        z1, z2 = self.numbers[s1].to(r.dtype), self.numbers[s2].to(r.dtype)
        envelope = polynomial_envelope(r, self.cutoffs[s1, s2].to(r.dtype), self.params.p)
        pair = zbl_pair_energy(r, z1, z2) * envelope
        per_atom = scatter_sum(0.5 * pair.unsqueeze(-1), receivers, species.shape[0])  # (N, 1)
        return scatter_sum(per_atom, state[F.BATCH], state[F.CELL].shape[0]).reshape(-1)
