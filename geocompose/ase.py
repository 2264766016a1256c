"""ASE calculator for a trained geocompose checkpoint.

    from geocompose.ase import Calculator
    atoms.calc = Calculator("runs/cu/best.pt")
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

Energy in eV, forces in eV/Å, stress in eV/Å^3 (Voigt order xx, yy, zz, yz, xz, xy,
ASE's sign), for any ``Atoms`` of the species the model was trained on: molecules,
periodic cells, any size. Forces are conservative (``-dE/dx``) when the blueprint's
forces readout is ``gradient``, and come from the vector head for ``direct_forces``.
Stress is available for structures periodic along all three axes; it is the strain
derivative of the energy (see :mod:`geocompose.train.potential`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from ase.calculators.calculator import Calculator as _AseCalculator
from ase.calculators.calculator import PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from geocompose.data.batch import Batch
from geocompose.train.checkpoint import load_potential
from geocompose.train.potential import Potential
from geocompose.types import fields as F

__all__ = ["Calculator"]


class Calculator(_AseCalculator):
    """Energy, forces and stress from a checkpoint written by ``geocompose train``.

    Args:
        checkpoint: a checkpoint path, or a :class:`~geocompose.train.Potential`.
        device: torch device to run on.
        averaged: use the checkpoint's averaged (EMA) weights when it has them.
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces", "stress"]

    def __init__(
        self,
        checkpoint: str | Path | Potential,
        device: str = "cpu",
        averaged: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        potential = (
            checkpoint
            if isinstance(checkpoint, Potential)
            else load_potential(checkpoint, averaged)
        )
        self.potential = potential.to(device).eval()
        self.device = device
        self.dtype = self.potential.model.dtype

    @property
    def conservative(self) -> bool:
        """Whether the forces are the exact negative gradient of the energy."""
        return self.potential.conservative

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        want_stress = "stress" in properties
        if want_stress and not atoms.pbc.all():
            raise PropertyNotImplementedError("stress needs a cell periodic along all three axes")
        batch = Batch.from_ase(atoms, dtype=self.dtype).to(device=self.device)
        batch.targets.clear()  # the reference values of a SinglePointCalculator are not inputs
        with torch.no_grad():  # forces and stress switch gradients on where they need them
            out = self.potential(batch, stress=want_stress)
        energy = float(out[F.ENERGY][0])
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        if F.FORCES in out:
            self.results["forces"] = out[F.FORCES].detach().cpu().double().numpy()
        elif "forces" in properties:
            raise PropertyNotImplementedError(
                f"model '{self.potential.model.name}' has no forces output"
            )
        if want_stress:
            stress = out[F.STRESS][0].detach().cpu().double().numpy()
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)
