"""ASE calculator for a trained geocompose checkpoint.

    from geocompose.ase import Calculator
    atoms.calc = Calculator("runs/cu/best.pt", dtype="float64")
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    atoms.get_potential_energies()  # per atom, summing to the energy

Energy in eV, forces in eV/Å, stress in eV/Å^3 (Voigt order xx, yy, zz, yz, xz, xy,
ASE's sign), for any ``Atoms`` of the species the model was trained on: molecules,
periodic cells, any size. Forces are conservative (``-dE/dx``) when the blueprint's
forces readout is ``gradient``, and come from the vector head for ``direct_forces``.
Stress is available for structures periodic along all three axes; it is the strain
derivative of the energy (see :mod:`geocompose.train.potential`). Per-atom
``energies`` are the ``sum`` energy readout's terms plus each species' reference energy.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from ase.calculators.calculator import Calculator as _AseCalculator
from ase.calculators.calculator import PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from geocompose.data.batch import Batch
from geocompose.deploy.inference import check_structures, load_for_inference, resolve_dtype
from geocompose.train.potential import Potential
from geocompose.types import fields as F

__all__ = ["Calculator"]


class Calculator(_AseCalculator):
    """Energy, forces, stress and per-atom energies from a ``geocompose train`` checkpoint.

    Args:
        checkpoint: a checkpoint path, or a :class:`~geocompose.train.Potential`.
        device: torch device to run on.
        averaged: use the checkpoint's averaged (EMA) weights when it has them.
        dtype: ``"float32"`` or ``"float64"`` (or a torch dtype); None keeps the
            checkpoint's. Verification-grade comparisons want float64.
        default_dtype: the same setting under the keyword ml-peg and mace-torch pass.
    """

    implemented_properties: ClassVar[list[str]] = [
        "energy",
        "free_energy",
        "energies",
        "forces",
        "stress",
    ]

    def __init__(
        self,
        checkpoint: str | Path | Potential,
        device: str = "cpu",
        averaged: bool = True,
        dtype: str | torch.dtype | None = None,
        default_dtype: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if dtype is not None or default_dtype is not None:
            dtype = resolve_dtype(dtype, default_dtype)
        self.potential = load_for_inference(checkpoint, dtype, device, averaged)
        self.device = device
        self.dtype = self.potential.model.dtype

    @property
    def conservative(self) -> bool:
        """Whether the forces are the exact negative gradient of the energy."""
        return self.potential.conservative

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties
        batch = Batch.from_ase(self.atoms, dtype=self.dtype)
        batch.targets.clear()  # the reference values of a SinglePointCalculator are not inputs
        check_structures(self.potential, batch.atomic_numbers, batch.pbc, want_stress)
        with torch.no_grad():  # forces and stress switch gradients on where they need them
            out = self.potential(batch.to(device=self.device), stress=want_stress)
        energy = float(out[F.ENERGY][0])
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        if F.ATOMIC_ENERGY in out:
            self.results["energies"] = _numpy(out[F.ATOMIC_ENERGY])
        elif "energies" in properties:
            raise PropertyNotImplementedError(
                f"model '{self.potential.model.name}' has no per-atom energies (its energy "
                "readout is not a 'sum', or the Potential was built without `per_atom`)"
            )
        if F.FORCES in out:
            self.results["forces"] = _numpy(out[F.FORCES])
        elif "forces" in properties:
            raise PropertyNotImplementedError(
                f"model '{self.potential.model.name}' has no forces output"
            )
        if want_stress:
            self.results["stress"] = full_3x3_to_voigt_6_stress(_numpy(out[F.STRESS][0]))


def _numpy(tensor: torch.Tensor):
    """A result as the float64 numpy array ASE expects."""
    return tensor.detach().cpu().double().numpy()
