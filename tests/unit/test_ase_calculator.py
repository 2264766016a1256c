"""The ASE calculator: same numbers as the Potential, ASE's conventions, MD runs."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.md.verlet import VelocityVerlet
from ase.stress import full_3x3_to_voigt_6_stress

import geocompose
from geocompose.ase import Calculator
from geocompose.data.batch import Batch
from geocompose.errors import StructureError
from geocompose.train import Potential, save_checkpoint

sys.path.insert(0, str(Path(__file__).parent / "train"))
from train_cases import tiny_painn, tiny_schnet


def _potential(blueprint):
    model = geocompose.compile(blueprint, dtype=torch.float64, seed=5)
    return Potential(
        model, torch.full((len(model.species),), -3.0, dtype=torch.float64), scale=0.5
    ).eval()


def crystal():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=3)
    return atoms


@pytest.mark.filterwarnings("ignore::FutureWarning")  # ASE renamed the numerical stress helper
def test_calculator_from_a_checkpoint_matches_the_potential(tmp_path):
    blueprint = tiny_schnet()
    potential = _potential(blueprint)
    state = {
        "blueprint": geocompose.load(blueprint).blueprint.model_dump(mode="json"),
        "species": ["Cu", "Au"],
        "dtype": "float64",
        "weights": potential.state_dict(),
        "ema": None,
    }
    save_checkpoint(state, tmp_path / "c.pt")
    atoms = crystal()
    atoms.calc = Calculator(tmp_path / "c.pt")
    assert atoms.calc.conservative
    expected = potential(Batch.from_ase(atoms), stress=True)
    assert atoms.get_potential_energy() == pytest.approx(float(expected["energy"][0]), abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), expected["forces"].numpy(), atol=1e-10)
    np.testing.assert_allclose(
        atoms.get_stress(), full_3x3_to_voigt_6_stress(expected["stress"][0].numpy()), atol=1e-12
    )
    numeric = atoms.calc.calculate_numerical_stress(atoms, d=1e-6)
    np.testing.assert_allclose(atoms.get_stress(), numeric, atol=1e-8)


def test_molecules_get_energy_and_forces_but_no_stress():
    cluster = molecule("CH4")
    cluster.symbols[:] = "Cu"
    cluster.calc = Calculator(_potential(tiny_schnet()))
    assert np.isfinite(cluster.get_potential_energy())
    assert cluster.get_forces().shape == (5, 3)
    with pytest.raises(PropertyNotImplementedError, match="periodic"):
        cluster.get_stress()
    water = molecule("H2O")
    water.calc = Calculator(_potential(tiny_schnet()))
    with pytest.raises(
        StructureError, match="atom 0 is O, which model 'tiny_schnet' does not know"
    ):
        water.get_potential_energy()


def test_direct_forces_come_from_the_vector_head():
    atoms = crystal()
    atoms.calc = Calculator(_potential(tiny_painn("direct_forces")))
    assert not atoms.calc.conservative
    forces = atoms.get_forces()
    assert forces.shape == (len(atoms), 3) and np.isfinite(forces).all()


def test_nve_with_a_conservative_model_conserves_energy():
    atoms = crystal()
    atoms.calc = Calculator(_potential(tiny_schnet()))
    rng = np.random.default_rng(0)
    atoms.set_velocities(rng.normal(scale=0.02, size=(len(atoms), 3)))  # Å/fs-ish units of ASE
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)
    total, kinetic = [], []
    for _ in range(30):
        dyn.run(1)
        total.append(atoms.get_total_energy())
        kinetic.append(atoms.get_kinetic_energy())
    assert np.ptp(kinetic) > 0
    assert np.ptp(total) < 0.02 * np.ptp(kinetic)


def test_the_nve_example_runs_and_reports_drift(tmp_path):
    import importlib.util

    blueprint = tiny_painn("direct_forces")
    blueprint["embedding"]["species"] = ["Cu"]
    potential = _potential(blueprint)
    state = {
        "blueprint": geocompose.load(blueprint).blueprint.model_dump(mode="json"),
        "species": ["Cu"],
        "dtype": "float64",
        "weights": potential.state_dict(),
        "ema": None,
    }
    save_checkpoint(state, tmp_path / "direct.pt")
    spec = importlib.util.spec_from_file_location(
        "md_nve", Path(__file__).parents[2] / "examples" / "md_nve.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.main(
        [
            str(tmp_path / "direct.pt"),
            "--steps",
            "10",
            "--dt",
            "1.0",
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    assert set(results) == {"EMT (reference)", "tiny_painn_direct_forces (direct forces)"}
    emt = results["EMT (reference)"]
    assert abs(emt["drift_mev_per_atom_per_ps"]) < 50 and emt["max_excursion_mev_per_atom"] < 5
    assert (tmp_path / "r.json").is_file()
