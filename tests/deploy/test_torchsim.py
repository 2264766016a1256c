"""geocompose.torchsim.Model: batched energies/forces/stress equal the ASE calculator's
(float64, <= 1e-10 relative), and TorchSim's NVE, NVT and FIRE-with-cell run with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.filters import FrechetCellFilter
from ase.md.verlet import VelocityVerlet
from ase.optimize import FIRE
from deploy_cases import rattled_copper

from geocompose.ase import Calculator
from geocompose.deploy import StressUnavailable
from geocompose.errors import StructureError

ts = pytest.importorskip("torch_sim", reason="the deploy extra installs torch-sim-atomistic")
from geocompose.torchsim import Model  # noqa: E402

FS = 0.001 * ts.units.MetalUnits.time  # 1 fs in TorchSim's internal time unit


def _systems():
    """Two cells of different sizes and shapes, one sheared, as one would batch them."""
    small = rattled_copper((2, 1, 1))
    large = rattled_copper((2, 2, 1), seed=4)
    large.set_cell(large.cell.array @ np.array([[1.0, 0.03, 0], [0, 1.02, 0], [0, 0, 0.98]]),
                   scale_atoms=True)
    return [small, large]


def test_batched_outputs_equal_the_ase_calculator(checkpoint):
    model = Model(checkpoint, device="cpu", dtype=torch.float64)
    assert model.dtype == torch.float64 and model.compute_stress and model.compute_forces
    systems = _systems()
    out = model(ts.io.atoms_to_state(systems, model.device, model.dtype))
    start = 0
    for index, atoms in enumerate(systems):
        atoms.calc = Calculator(checkpoint, dtype="float64")
        stop = start + len(atoms)
        energy = atoms.get_potential_energy()
        assert float(out["energy"][index]) == pytest.approx(energy, rel=1e-10, abs=0)
        forces = out["forces"][start:stop].numpy()
        np.testing.assert_allclose(forces, atoms.get_forces(), rtol=1e-10, atol=1e-12)
        stress = atoms.get_stress(voigt=False)
        np.testing.assert_allclose(out["stress"][index].numpy(), stress, rtol=1e-10, atol=1e-13)
        start = stop


def test_float32_is_the_same_model_at_round_off(checkpoint):
    systems = _systems()
    single = Model(checkpoint, dtype="float32")
    assert single.dtype == torch.float32
    out = single(ts.io.atoms_to_state(systems, single.device, single.dtype))
    assert out["energy"].dtype == torch.float32
    for index, atoms in enumerate(systems):
        atoms.calc = Calculator(checkpoint, dtype="float64")
        assert float(out["energy"][index]) == pytest.approx(atoms.get_potential_energy(),
                                                            rel=1e-5)


def test_molecules_without_stress_and_the_same_errors_as_ase(checkpoint):
    clusters = [molecule("CH4"), molecule("C2H6")]
    for cluster in clusters:
        cluster.symbols[:] = "Cu"
        cluster.positions *= 1.8  # Cu-Cu distances, not C-H ones
    model = Model(checkpoint, compute_stress=False)
    out = model(ts.io.atoms_to_state(clusters, model.device, model.dtype))
    assert set(out) == {"energy", "forces"}
    clusters[1].calc = Calculator(checkpoint)
    assert float(out["energy"][1]) == pytest.approx(clusters[1].get_potential_energy(), rel=1e-10)

    with pytest.raises(StressUnavailable) as from_torchsim:
        Model(checkpoint)(ts.io.atoms_to_state(clusters, model.device, model.dtype))
    clusters[0].calc = Calculator(checkpoint)
    with pytest.raises(StressUnavailable) as from_ase:
        clusters[0].get_stress()
    assert str(from_torchsim.value) == str(from_ase.value)

    water = molecule("H2O")
    with pytest.raises(StructureError, match="atom 0 is O, which model 'deploy_cu' does not know"):
        model(ts.io.atoms_to_state([water], model.device, model.dtype))


def test_batched_nve_follows_ase_velocity_verlet(checkpoint):
    """The same initial momenta give the same trajectory as ASE's VelocityVerlet, for
    each system of the batch, and the total energy is conserved."""
    model = Model(checkpoint, compute_stress=False)
    systems = _systems()
    init_fn, update_fn = ts.nve(model, dt=torch.tensor(FS, dtype=torch.float64),
                                kT=torch.tensor(300 * ts.units.MetalUnits.temperature,
                                                dtype=torch.float64), seed=7)
    state = init_fn(ts.io.atoms_to_state(systems, model.device, model.dtype))
    momenta = state.momenta.clone()
    total = []
    for _ in range(20):
        state = update_fn(state)
        kinetic = ts.calc_kinetic_energy(masses=state.masses, momenta=state.momenta,
                                         system_idx=state.system_idx)
        total.append((state.energy + kinetic).numpy())
    total = np.array(total)  # (steps, systems)
    start = 0
    for index, atoms in enumerate(systems):
        stop = start + len(atoms)
        atoms.calc = Calculator(checkpoint)
        atoms.set_momenta(momenta[start:stop].numpy())  # same units: amu Å / (Å sqrt(amu/eV))
        VelocityVerlet(atoms, timestep=FS).run(20)
        # TorchSim wraps positions into the cell; compare the displacements modulo it.
        moved = state.positions[start:stop].numpy() - atoms.positions
        fractional = moved @ np.linalg.inv(atoms.cell.array)
        moved = (fractional - np.round(fractional)) @ atoms.cell.array
        np.testing.assert_allclose(moved, 0, atol=1e-9)
        drift = np.ptp(total[:, index]) / len(atoms)
        assert drift < 1e-4, f"system {index}: total energy moved {drift:.2e} eV/atom in 20 fs"
        start = stop


def test_batched_nvt_langevin_cools_hot_systems_towards_the_target(checkpoint):
    model = Model(checkpoint, compute_stress=False)
    systems = [rattled_copper((2, 2, 2), seed=s) for s in (1, 2)]
    state = ts.io.atoms_to_state(systems, model.device, model.dtype)
    init_fn, update_fn = ts.nvt_langevin(
        model,
        dt=torch.tensor(2 * FS, dtype=torch.float64),
        kT=torch.tensor(300 * ts.units.MetalUnits.temperature, dtype=torch.float64),
        gamma=torch.tensor(1 / (10 * 2 * FS), dtype=torch.float64),
        seed=11,
    )
    state = init_fn(state, kT=torch.tensor(1500 * ts.units.MetalUnits.temperature,
                                           dtype=torch.float64))
    temperatures = []
    for _ in range(120):
        state = update_fn(state)
        temperatures.append(ts.quantities.calc_temperature(
            masses=state.masses, momenta=state.momenta, system_idx=state.system_idx).numpy())
    start, end = np.mean(temperatures[:3], axis=0), np.mean(temperatures[-40:], axis=0)
    assert (start > 900).all(), start
    # 32 atoms: instantaneous temperatures scatter by ~15 %; the mean of 40 steps is tighter.
    assert ((end > 150) & (end < 550)).all(), end


def test_fire_with_a_cell_filter_follows_ase_fire_with_frechet_cell_filter(checkpoint):
    """TorchSim's ``frechet_cell_fire`` (ASE flavour) takes the steps ASE's FIRE takes
    on a FrechetCellFilter with our calculator: positions, cell and stress all enter."""
    model = Model(checkpoint)
    atoms = rattled_copper((2, 1, 1))
    init_fn, update_fn = ts.frechet_cell_fire(model, md_flavor="ase_fire")
    state = init_fn(ts.io.atoms_to_state([atoms.copy()], model.device, model.dtype))
    ours = []
    for _ in range(6):
        ours.append(float(state.energy[0]))
        state = update_fn(state)
    atoms.calc = Calculator(checkpoint)
    optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
    theirs = []
    for _ in range(6):
        theirs.append(atoms.get_potential_energy())
        optimizer.step()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    assert ours[-1] < ours[0]
    np.testing.assert_allclose(state.row_vector_cell[0].numpy(), atoms.cell.array, atol=1e-8)
    assert not np.allclose(atoms.cell.array, rattled_copper((2, 1, 1)).cell.array)
