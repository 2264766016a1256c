"""Black boxes: any ASE calculator (a peer code, a trained checkpoint) as a Subject.

Nothing is known inside a black box, so its facts come from the caller: the group it
claims (default O(3)), its species, a cutoff to size samples by and, only if stated,
the range beyond which atoms never interact (then locality and extensivity are claims)
and whether the energy is smooth. Forces are claimed conservative (the contract of an
interatomic potential's forces); stress is checked against the strain derivative of
the energy wherever the calculator implements it.
"""

from __future__ import annotations

import ase
import numpy as np
import torch
from ase.calculators.calculator import PropertyNotImplementedError

from geocompose.data.batch import Batch
from geocompose.errors import GeocomposeError
from geocompose.types import FieldType, Level
from geocompose.types import fields as F
from geocompose.types.group import Group
from geocompose.types.irreps import parse_irreps
from geocompose.verification.subject import Facts, Subject

OUTPUTS = {
    F.ENERGY: FieldType(parse_irreps("1x0e"), Level.STRUCTURE),
    F.FORCES: FieldType(parse_irreps("1o"), Level.NODE),
}


def batch_to_atoms(batch: Batch) -> list[ase.Atoms]:
    """Each structure of a batch as ``ase.Atoms`` (float64)."""
    structures = []
    for s, (start, stop) in enumerate(batch.ranges()):
        structures.append(
            ase.Atoms(
                numbers=batch.atomic_numbers[start:stop].cpu().numpy(),
                positions=batch.positions[start:stop].detach().cpu().double().numpy(),
                cell=batch.cell[s].detach().cpu().double().numpy(),
                pbc=batch.pbc[s].cpu().numpy(),
            )
        )
    return structures


class CalculatorRun:
    """``batch -> {energy (B, 1), forces (N, 3)}`` through an ASE calculator."""

    def __init__(self, calculator):
        self.calculator = calculator

    def _attach(self, atoms: ase.Atoms) -> ase.Atoms:
        atoms.calc = self.calculator
        return atoms

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        energies, forces = [], []
        for atoms in batch_to_atoms(batch):
            self._attach(atoms)
            energies.append(float(atoms.get_potential_energy()))
            forces.append(np.asarray(atoms.get_forces(), dtype=np.float64).reshape(-1, 3))
        energy = torch.tensor(energies, dtype=torch.float64).reshape(-1, 1)
        force = torch.from_numpy(np.concatenate(forces)) if forces else torch.zeros((0, 3))
        return {F.ENERGY: energy, F.FORCES: force.to(torch.float64)}

    def stress(self, atoms: ase.Atoms) -> np.ndarray | None:
        """(3, 3) stress in eV/Å^3 (ASE's sign), or None when not implemented."""
        self._attach(atoms)
        try:
            return np.asarray(atoms.get_stress(voigt=False), dtype=np.float64)
        except (PropertyNotImplementedError, NotImplementedError):
            return None

    def energy(self, atoms: ase.Atoms) -> float:
        self._attach(atoms)
        return float(atoms.get_potential_energy())


def calculator_subject(
    calculator,
    *,
    species,
    claim: Group = Group.O3,
    cutoff: float = 5.0,
    reach: float | None = None,
    smooth: bool = False,
    periodic: bool = True,
    name: str | None = None,
) -> Subject:
    """An ASE calculator as a black box to verify.

    Args:
        calculator: an ``ase.calculators.calculator.Calculator`` instance.
        species: chemical symbols to sample structures from (ones it supports).
        claim: the group it claims (O(3), SO(3) or none).
        cutoff: sizes the sampled molecules and places the continuity dimer (Å).
        reach: if given, the range beyond which atoms never interact: locality and
            extensivity become claims (ghost atoms and copies are placed beyond it).
        smooth: claim the energy continuous across ``cutoff``.
        periodic: it accepts periodic cells.
        name: the report's title (default: the calculator's class name).

    Raises:
        GeocomposeError: no species given.
    """
    if not species:
        raise GeocomposeError("a black box needs --species: the elements to sample structures of")
    run = CalculatorRun(calculator)
    facts = Facts(
        name=name or type(calculator).__name__,
        species=tuple(species),
        outputs=dict(OUTPUTS),
        claim=claim,
        derived=claim,
        strategy="black box",
        smooth=smooth,
        cutoff=float(cutoff),
        reach=float(reach if reach is not None else cutoff),
        periodic=periodic,
        extensive=reach is not None,
        conservative={F.FORCES: F.ENERGY},
        stress=F.STRESS,
        differentiable=False,
    )
    return Subject(run=run, facts=facts, energy_of=run.energy, stress_of=run.stress)
