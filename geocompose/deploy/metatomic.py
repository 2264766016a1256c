"""A trained checkpoint as a metatomic atomistic model: one TorchScript file that ASE,
LAMMPS, i-PI, TorchSim and other metatomic engines load without geocompose.

    geocompose export runs/cu/best.pt cu.pt --format metatomic

The saved model is :class:`MetatomicPotential`, a TorchScript-compatible wrapper around
the potential's inference twin (:mod:`geocompose.deploy.torchscript`), inside
metatomic's ``AtomisticModel``. Per call it

* concatenates the engine's systems into one batch (positions, types, cell, pbc);
* reads the full neighbour list it requested (the model's cutoff, Å): metatomic's pair
  ``(first_atom i, second_atom j, cell_shift S)`` has the vector
  ``x_j - x_i + S @ cell``, which is our edge ``[sender j, receiver i]`` with shift
  ``S`` as it is; pairs at or beyond the cutoff (a non-strict list) are dropped, as our
  radius graph never builds them;
* runs the twin, whose energy is differentiable w.r.t. positions and cell, so engines
  get forces and stress by autograd as they do for any conservative metatomic model.

Per-atom energies (``energy`` with ``sample_kind="atom"``, and ``selected_atoms`` for
domain decomposition) exist when the blueprint's energy readout is a ``sum``: they are
its per-atom terms plus the reference energies, as in the ASE calculator; otherwise the
model declares system energies only and refuses per-atom requests in one line. A
direct-force model also declares its force head as ``non_conservative_force``. Graphs
other than a radius graph and graphs with a second edge set are refused at export. The
file runs on the CPU (the trace records its device).

No ``from __future__ import annotations`` here, and ``typing`` generics (``List``,
``Optional``) rather than builtins and ``X | None``: metatomic checks ``forward``'s
annotations as these types, and TorchScript compiles them.
"""

# ruff: noqa: UP006, UP007, UP032, UP035, UP045

from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import ase.data
import numpy as np
import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import (
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
)

from geocompose.data.batch import Batch
from geocompose.deploy.torchscript import inference_twin
from geocompose.train.export import ExportError
from geocompose.train.potential import Potential
from geocompose.types import fields as F

# metatomic's name for forces that are not -dE/dx (spelt out in `forward`: TorchScript
# reads no module globals)
FORCES = "non_conservative_force"

__all__ = [
    "MetatomicPotential",
    "atomistic_model",
    "batch_inputs",
    "interaction_range",
    "metatomic_deviation",
    "save_metatomic",
]


def batch_inputs(
    systems: List[System], neighbours: NeighborListOptions, cutoff: float
) -> Tuple[
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
]:
    """The engine's systems as one batch of the twin's inputs.

    Returns:
        positions (N, 3), atomic_numbers (N,), batch (N,), cell (B, 3, 3), pbc (B, 3),
        edge_index (2, E) [sender j, receiver i], edge_shifts (E, 3) and the first atom of
        each system (B,). metatomic's pair ``(first_atom i, second_atom j, S)`` has the
        vector ``x_j - x_i + S @ cell``: our receiver i, sender j and shift S. Pairs at
        or beyond ``cutoff`` are dropped (our radius graph never builds them); edges are
        sorted by receiver, as our graphs are (faster scatters).
    """
    positions: List[torch.Tensor] = []
    numbers: List[torch.Tensor] = []
    batch: List[torch.Tensor] = []
    senders: List[torch.Tensor] = []
    receivers: List[torch.Tensor] = []
    shifts: List[torch.Tensor] = []
    starts: List[int] = []
    offset = 0
    for index, system in enumerate(systems):
        count = len(system)
        pairs = system.get_neighbor_list(neighbours)
        within = torch.linalg.vector_norm(pairs.values.detach().reshape(-1, 3), dim=1) < cutoff
        pair = pairs.samples.values[within].to(torch.long)  # (E, 5): i, j, S
        positions.append(system.positions)
        numbers.append(system.types.to(torch.long))
        batch.append(torch.full((count,), index, dtype=torch.long, device=system.device))
        receivers.append(pair[:, 0] + offset)
        senders.append(pair[:, 1] + offset)
        shifts.append(pair[:, 2:5])
        starts.append(offset)
        offset += count
    receiver = torch.cat(receivers)
    order = torch.sort(receiver, stable=True)[1]
    device = receiver.device
    return (
        torch.cat(positions),
        torch.cat(numbers),
        torch.cat(batch),
        torch.stack([system.cell for system in systems]),
        torch.stack([system.pbc for system in systems]),
        torch.stack([torch.cat(senders)[order], receiver[order]]),
        torch.cat(shifts)[order],
        torch.tensor(starts, dtype=torch.long, device=device),
    )


class MetatomicPotential(torch.nn.Module):
    """metatomic's ``ModelInterface`` around a scripted inference twin.

    Args:
        twin: the scripted twin (:func:`~geocompose.deploy.torchscript.inference_twin`).
        name: the model's name, for the unknown-species error.
        species: the chemical symbols the model knows.
        cutoff: the radius graph's cutoff (Å); the neighbour list requested.
        per_atom: whether the twin returns per-atom energies.
        direct: whether the twin returns forces of its own (a direct-force head), given
            as ``non_conservative_force``.
    """

    symbols: List[str]
    species: List[str]

    def __init__(
        self,
        twin: torch.jit.ScriptModule,
        name: str,
        species: List[str],
        cutoff: float,
        per_atom: bool,
        direct: bool = False,
    ):
        super().__init__()
        self.twin = twin
        self.name = name
        self.species = species
        self.symbols = list(ase.data.chemical_symbols)
        self.cutoff = float(cutoff)
        self.per_atom = per_atom
        self.direct = direct
        table = torch.full((len(ase.data.chemical_symbols),), -1, dtype=torch.long)
        for index, symbol in enumerate(species):
            table[ase.data.atomic_numbers[symbol]] = index
        self.register_buffer("species_of_z", table)
        self.neighbours = NeighborListOptions(cutoff=self.cutoff, full_list=True, strict=True)

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self.neighbours]

    def _check_species(self, atomic_numbers: torch.Tensor):
        """The same one-line refusal as :meth:`GeometricModel.species_index`."""
        if atomic_numbers.numel() == 0:
            return
        if int(atomic_numbers.min()) < 0 or int(atomic_numbers.max()) >= len(self.symbols):
            raise ValueError("atomic numbers out of range")
        unknown = (self.species_of_z[atomic_numbers] < 0).nonzero().flatten()
        if unknown.numel() > 0:
            atom = int(unknown[0])
            raise ValueError(
                "atom {} is {}, which model '{}' does not know (its species: {})".format(
                    atom,
                    self.symbols[int(atomic_numbers[atom])],
                    self.name,
                    ", ".join(self.species),
                )
            )

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        results: Dict[str, TensorMap] = {}
        wants_forces = "non_conservative_force" in outputs
        if "energy" not in outputs and not wants_forces:
            return results
        if wants_forces and not self.direct:
            raise ValueError(
                "model '{}' has conservative forces: take them as -dE/dx of 'energy'".format(
                    self.name
                )
            )
        per_atom = "energy" in outputs and outputs["energy"].sample_kind == "atom"
        if (per_atom or selected_atoms is not None) and not self.per_atom:
            raise ValueError(
                "model '{}' has no per-atom energies (its energy readout is not a 'sum'), "
                "so it cannot give per-atom energies or energies of selected atoms".format(
                    self.name
                )
            )
        positions, atomic_numbers, structure, cell, pbc, edge_index, edge_shifts, starts = (
            batch_inputs(systems, self.neighbours, self.cutoff)
        )
        self._check_species(atomic_numbers)
        energy, atomic, forces = self.twin(
            positions, atomic_numbers, structure, cell, pbc, edge_index, edge_shifts
        )
        atom = torch.arange(structure.shape[0], device=structure.device) - starts[structure]
        if selected_atoms is not None:
            chosen = selected_atoms.values.to(torch.long)  # (K, 2): system, atom
            rows = starts[chosen[:, 0]] + chosen[:, 1]
            atomic, structure, atom = atomic[rows], structure[rows], atom[rows]
            if self.direct:
                forces = forces[rows]
            energy = torch.zeros_like(energy).index_add(0, structure, atomic)
        device = energy.device
        keys = Labels(["_"], torch.zeros((1, 1), dtype=torch.int32, device=device))
        atoms = Labels(["system", "atom"], torch.stack([structure, atom], dim=1).to(torch.int32))
        if "energy" in outputs:
            if per_atom:
                values, samples = atomic.reshape(-1, 1), atoms
            else:
                values = energy.reshape(-1, 1)
                system_index = torch.arange(len(systems), device=device, dtype=torch.int32)
                samples = Labels(["system"], system_index.reshape(-1, 1))
            block = TensorBlock(
                values=values,
                samples=samples,
                components=[],
                properties=Labels(
                    ["energy"], torch.zeros((1, 1), dtype=torch.int32, device=device)
                ),
            )
            results["energy"] = TensorMap(keys, [block])
        if wants_forces:
            xyz = Labels(["xyz"], torch.arange(3, dtype=torch.int32, device=device).reshape(-1, 1))
            block = TensorBlock(
                values=forces.reshape(-1, 3, 1),
                samples=atoms,
                components=[xyz],
                properties=Labels(
                    ["non_conservative_force"],
                    torch.zeros((1, 1), dtype=torch.int32, device=device),
                ),
            )
            results["non_conservative_force"] = TensorMap(keys, [block])
        return results


def interaction_range(potential: Potential) -> float:
    """How far an atom sees (Å): the graph's reach times the number of blocks that pass
    messages along edges (rows of the type trace that read the edge index), or the reach
    when the trace names none."""
    trace = potential.model.trace
    steps = sum(1 for row in trace.rows[1:] if F.EDGE_INDEX in row.reads)
    return float(trace.reach) * max(steps, 1)


def atomistic_model(potential: Potential, example: Batch, description: str = "") -> AtomisticModel:
    """``potential`` as a metatomic ``AtomisticModel`` (energy in eV, lengths in Å, the
    potential's dtype), built from its inference twin traced on ``example``.

    A direct-force model also declares ``non_conservative_force`` (its force head);
    ``energy`` is still there, and its gradient is what conservative engines take.

    Raises:
        ExportError: a graph that is not a radius graph, or a model that cannot be traced
            or scripted.
    """
    model = potential.model
    if model.graph.entry.name != "radius":
        raise ExportError(
            f"model '{model.name}' builds a '{model.graph.entry.name}' graph; metatomic engines "
            "give a radius neighbour list, so only 'radius' graphs export"
        )
    twin = inference_twin(potential, example)
    per_atom = F.ATOMIC_ENERGY in model.outputs
    direct = potential.has_forces and not potential.conservative
    wrapper = MetatomicPotential(
        twin, model.name, list(model.species), model.trace.cutoff, per_atom, direct
    )
    dtype = str(model.dtype).removeprefix("torch.")
    outputs = {"energy": ModelOutput(unit="eV", sample_kind="atom" if per_atom else "system")}
    if direct:  # the head's forces; engines use them with e.g. non_conservative="forces"
        outputs[FORCES] = ModelOutput(unit="eV/Angstrom", sample_kind="atom")
    capabilities = ModelCapabilities(
        outputs=outputs,
        atomic_types=sorted(ase.data.atomic_numbers[s] for s in model.species),
        interaction_range=interaction_range(potential),
        length_unit="angstrom",
        # The trace records the device it ran on (explicit `.to(device)` and factory
        # calls), so a twin traced on the CPU runs on the CPU only.
        supported_devices=["cpu"],
        dtype=dtype,
    )
    metadata = ModelMetadata(
        name=model.name,
        description=description or f"geocompose blueprint '{model.name}' ({dtype})",
        references={"implementation": ["geocompose"]},
    )
    return AtomisticModel(wrapper.eval(), metadata, capabilities)


def save_metatomic(
    potential: Potential, path: Union[str, Path], example: Batch, description: str = ""
) -> Path:
    """Write ``potential`` as a metatomic model file (see :func:`atomistic_model`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomistic_model(potential, example, description).save(str(path))
    return path


def metatomic_deviation(
    potential: Potential, path: Union[str, Path], batch: Batch
) -> Dict[str, float]:
    """Largest absolute difference of energy, forces and (3D-periodic structures only)
    stress between ``potential`` (our ASE calculator) and the saved file run by
    metatomic-ase's calculator, over the structures of ``batch``: the check
    ``geocompose export --format metatomic`` prints."""
    from metatomic_ase import MetatomicCalculator

    from geocompose.ase import Calculator
    from geocompose.verification.calculator import batch_to_atoms

    ours, theirs = Calculator(potential), MetatomicCalculator(str(path))
    worst = {F.ENERGY: 0.0, F.FORCES: 0.0}
    for atoms in batch_to_atoms(batch):
        results = []
        for calculator in (ours, theirs):
            copy = atoms.copy()
            copy.calc = calculator
            result = {F.ENERGY: copy.get_potential_energy(), F.FORCES: copy.get_forces()}
            if copy.pbc.all():
                result[F.STRESS] = copy.get_stress()
            results.append(result)
        for name, value in results[0].items():
            difference = float(np.abs(np.asarray(value) - np.asarray(results[1][name])).max())
            worst[name] = max(worst.get(name, 0.0), difference)
    return worst
