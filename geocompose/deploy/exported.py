"""A ``.pt2`` export (``geocompose export``) as an ASE calculator, with our radius graph.

The exported program starts after the neighbour list; this calculator builds it as the
compiled model does (:func:`~geocompose.nn.graph.neighbours.radius_pairs` with the
cutoff stored in the file), so the file can be run, and verified as a black box
(``geocompose verify --export model.pt2``), with nothing from its blueprint but that.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import ase.data
import numpy as np
import torch
from ase.calculators.calculator import Calculator as _AseCalculator
from ase.calculators.calculator import all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from geocompose.data.batch import Batch
from geocompose.deploy.inference import DeployError, StressUnavailable
from geocompose.errors import StructureError
from geocompose.nn.graph.neighbours import radius_pairs
from geocompose.train.export import ExportedPotential

__all__ = ["ExportedCalculator"]


class ExportedCalculator(_AseCalculator):
    """Energy, forces and stress (3D-periodic cells) of a ``.pt2`` file.

    Args:
        path: a file written by ``geocompose export`` (``--format pt2``).

    Raises:
        DeployError: a file whose graph is not a radius graph (only that one is rebuilt).
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, path: str | Path, **kwargs):
        super().__init__(**kwargs)
        self.exported = ExportedPotential(path)
        meta = self.exported.metadata
        graph = meta.get("graph") or {}
        if graph.get("type", "radius") != "radius" or "cutoff" not in graph:
            raise DeployError(
                f"{path}: its graph is {graph.get('type', 'not recorded')!r}; only exports of "
                "radius graphs can be run with a rebuilt neighbour list"
            )
        self.model_name = meta["name"]
        self.species = tuple(meta["species"])
        self.cutoff = float(graph["cutoff"])
        self.dtype = getattr(torch, meta["dtype"])

    def _check_species(self, numbers: np.ndarray) -> None:
        """The one-line refusal every engine gives (as the compiled model's)."""
        known = {ase.data.atomic_numbers[s] for s in self.species}
        for atom, number in enumerate(numbers.tolist()):
            if number not in known:
                raise StructureError(
                    f"atom {atom} is {ase.data.chemical_symbols[number]}, which model "
                    f"'{self.model_name}' does not know (its species: {', '.join(self.species)})"
                )

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties
        self._check_species(self.atoms.numbers)
        if want_stress and not self.atoms.pbc.all():
            raise StressUnavailable(
                "stress needs a cell periodic along all three axes; structure 0 has "
                f"pbc={[bool(p) for p in self.atoms.pbc]}"
            )
        batch = Batch.from_ase(self.atoms, dtype=self.dtype)
        receivers, senders, shifts = radius_pairs(
            batch.positions.double().numpy(),
            batch.cell[0].double().numpy(),
            batch.pbc[0].numpy(),
            self.cutoff,
        )
        edge_index = torch.from_numpy(np.stack([senders, receivers]).astype(np.int64))
        out = self.exported(
            batch.positions,
            batch.atomic_numbers,
            batch.batch,
            batch.cell,
            batch.pbc,
            edge_index,
            torch.from_numpy(np.asarray(shifts, dtype=np.int64).reshape(-1, 3)),
            stress=want_stress,
        )
        energy = float(out["energy"][0])
        self.results["energy"] = self.results["free_energy"] = energy
        self.results["forces"] = out["forces"].double().numpy()
        if want_stress:
            self.results["stress"] = full_3x3_to_voigt_6_stress(out["stress"][0].double().numpy())
