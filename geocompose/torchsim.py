"""A trained checkpoint as a TorchSim model: batched MD and relaxation on any device.

    import torch_sim as ts
    from geocompose.torchsim import Model

    model = Model("runs/cu/best.pt", device="cpu", dtype=torch.float64)
    state = ts.io.atoms_to_state([atoms_a, atoms_b], model.device, model.dtype)
    final = ts.integrate(state, model, integrator=ts.nvt_langevin, n_steps=100,
                         timestep=0.002, temperature=300)

TorchSim (``torch-sim-atomistic``; 0.3.0 is the last release for Python 3.11) batches
many systems into one ``SimState``; this model evaluates them in one call of the
:class:`~geocompose.train.Potential`, returning ``energy`` (B,) eV, ``forces`` (N, 3)
eV/Å and ``stress`` (B, 3, 3) eV/Å^3 in ASE's sign, which is TorchSim's too. TorchSim
stores cells as column vectors; our batches hold lattice vectors as rows, so the cell is
transposed on the way in.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch_sim as ts
from torch_sim.models.interface import ModelInterface

from geocompose.data.batch import Batch
from geocompose.deploy.inference import check_structures, load_for_inference
from geocompose.train.potential import Potential
from geocompose.types import fields as F

__all__ = ["Model"]


class Model(ModelInterface):
    """A :class:`torch_sim.models.interface.ModelInterface` around a checkpoint.

    Args:
        checkpoint: a file written by ``geocompose train``, or a Potential.
        device: torch device the model and the states run on.
        dtype: ``torch.float64`` (default, what verification compares in) or float32.
        compute_stress: return stress (needed by cell filters and NPT); states must then
            be periodic, or the call is refused with the same error as in ASE.
        averaged: use the averaged (EMA) weights when the checkpoint has them.
    """

    def __init__(
        self,
        checkpoint: str | Path | Potential,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = torch.float64,
        compute_stress: bool = True,
        averaged: bool = True,
    ):
        super().__init__()
        self.potential = load_for_inference(checkpoint, dtype, device, averaged)
        self._device = torch.device(device)
        self._dtype = self.potential.model.dtype
        self._compute_stress = compute_stress
        self._compute_forces = self.potential.has_forces
        self._memory_scales_with = "n_atoms_x_density"  # a radius graph

    def forward(self, state: ts.SimState | dict, **_) -> dict[str, torch.Tensor]:
        """Energy (B,), forces (N, 3) and, with ``compute_stress``, stress (B, 3, 3)."""
        if isinstance(state, dict):
            state = ts.SimState(**state, masses=torch.ones_like(state["positions"][:, 0]))
        periodic = bool(state.pbc)
        num_systems = state.n_systems
        pbc = torch.full((num_systems, 3), periodic, dtype=torch.bool, device=state.device)
        cell = state.row_vector_cell if periodic else torch.zeros_like(state.cell)
        check_structures(self.potential, state.atomic_numbers, pbc, self._compute_stress)
        batch = Batch(
            state.positions.to(self._dtype),
            state.atomic_numbers.long(),
            state.system_idx.long(),
            cell.to(self._dtype),
            pbc,
        )
        out = self.potential(batch, stress=self._compute_stress)
        result = {"energy": out[F.ENERGY].detach()}
        if F.FORCES in out:
            result["forces"] = out[F.FORCES].detach()
        if self._compute_stress:
            result["stress"] = out[F.STRESS].detach()
        return result
