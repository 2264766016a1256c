"""A compiled model as an interatomic potential: fixed energy shift and scale, stress.

The network learns the *residual* energy in units of a fixed scale:

    E_b = scale * E_net(b) + sum_{i in b} e_ref[Z_i],      F_i = scale * F_net,i

where ``e_ref`` are per-species reference energies fitted by least squares on the
training set and ``scale`` is the RMS of the training forces (the normalisation used by
NequIP and MACE), so an untrained network starts near the right magnitudes. Both are
buffers: saved with the weights, never trained. Physical energy terms in the blueprint
(``zbl``, ``reference_energies``) are divided by ``scale`` inside the model, so they
reach ``E_b`` in eV, unscaled.

Stress comes from a symmetric strain ``eps`` applied to positions and cell,
``x -> x (1 + eps)``, ``cell -> cell (1 + eps)``:

    sigma_b = (1 / V_b) dE_b / d eps_b     (ASE's sign: negative under compression)

which works for every blueprint whose energy reads geometry through edge vectors.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from geocompose.data.batch import Batch
from geocompose.errors import StructureError
from geocompose.nn.model import GeometricModel
from geocompose.nn.ops.scatter import scatter_sum
from geocompose.nn.readout.energy_term import set_energy_unit
from geocompose.types import fields as F

__all__ = ["Potential"]


class Potential(nn.Module):
    """Energy, forces and stress of a :class:`GeometricModel` in physical units.

    Args:
        model: the compiled blueprint; must have an ``energy`` output (B, 1), and a
            ``forces`` output (N, 3) for forces (conservative or direct).
        reference: (S,) reference energy of each of ``model.species`` in eV.
        scale: the network's energy unit in eV (forces in eV/Å).
    """

    def __init__(
        self, model: GeometricModel, reference: torch.Tensor | None = None, scale: float = 1.0
    ):
        super().__init__()
        if F.ENERGY not in model.outputs:
            raise StructureError(
                f"model '{model.name}' has no '{F.ENERGY}' output (its outputs: "
                f"{', '.join(model.outputs)}); a potential needs one"
            )
        self.model = model
        if reference is None:
            reference = torch.zeros(len(model.species))
        self.register_buffer("reference", reference.detach().to(model.dtype).clone())
        self.register_buffer("scale", torch.tensor(float(scale), dtype=model.dtype))
        # Physical terms (ZBL, E0s) inside the model divide by the scale this multiplies by.
        set_energy_unit(model, float(scale))

    @property
    def species(self) -> tuple[str, ...]:
        return self.model.species

    @property
    def has_forces(self) -> bool:
        return F.FORCES in self.model.outputs

    @property
    def conservative(self) -> bool:
        """Whether forces are the gradient of the energy (a derivative readout)."""
        return (
            self.has_forces
            and self.model.needs_position_grad
            and F.FORCES not in self.model.inner_outputs
        )

    def forward(self, batch: Batch, stress: bool = False) -> dict[str, torch.Tensor]:
        """``energy`` (B,) eV, ``forces`` (N, 3) eV/Å when the model has them,
        ``atomic_energy`` (N,) eV when the energy readout writes its per-atom terms under
        that name (they sum to ``energy``), and ``stress`` (B, 3, 3) eV/Å^3 when asked
        (periodic structures only).

        Raises:
            StructureError: stress asked for a structure that is not periodic in 3D.
        """
        strain = None
        if stress and batch.num_structures and not bool(batch.pbc.all()):
            raise StructureError("stress needs structures periodic along all three lattice vectors")
        with torch.enable_grad() if stress else nullcontext():
            if stress:
                batch, strain = _strained(batch)
            out = self.model(batch, strain=strain)
            species = self.model.species_index(batch.atomic_numbers)
            shift = scatter_sum(self.reference[species], batch.batch, batch.num_structures)
            energy = self.scale * out[F.ENERGY].reshape(-1) + shift
            result = {F.ENERGY: energy}
            if F.ATOMIC_ENERGY in out:
                atomic = self.scale * out[F.ATOMIC_ENERGY].reshape(-1)
                result[F.ATOMIC_ENERGY] = atomic + self.reference[species]
            if self.has_forces:
                result[F.FORCES] = self.scale * out[F.FORCES]
            if strain is not None:
                if F.STRAIN_DERIVATIVE in out:  # taken with the forces, in one backward pass
                    grad = self.scale * out[F.STRAIN_DERIVATIVE]
                else:  # no gradient forces readout (direct forces, energy only)
                    (grad,) = torch.autograd.grad(
                        energy.sum(),
                        strain,
                        create_graph=self.training,
                        retain_graph=self.training,
                        allow_unused=True,
                    )
                    if grad is None:
                        grad = torch.zeros_like(strain)
                # In the strain's dtype: under bf16 autocast the strained cell is bf16,
                # for which torch has no determinant.
                volume = torch.linalg.det(batch.cell.to(strain.dtype)).abs().view(-1, 1, 1)
                result[F.STRESS] = grad / volume
                if not self.training:
                    result = {k: v.detach() for k, v in result.items()}
        return result


def _strained(batch: Batch) -> tuple[Batch, torch.Tensor]:
    """The batch deformed by a zero symmetric strain that requires grad, sharing the
    original's cached neighbour topology (the geometry is unchanged at zero strain)."""
    eps = torch.zeros_like(batch.cell, requires_grad=True)  # (B, 3, 3)
    deform = torch.eye(3, dtype=batch.cell.dtype, device=batch.cell.device) + 0.5 * (
        eps + eps.transpose(1, 2)
    )
    positions = torch.einsum("ni,nij->nj", batch.positions, deform[batch.batch])
    cell = torch.bmm(batch.cell, deform)
    strained = batch.same_topology(positions=positions, cell=cell)
    return strained, eps
