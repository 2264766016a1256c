"""The ASE calculator's deployment settings: dtype (and ml-peg's ``default_dtype``),
per-atom energies, stress only for 3D-periodic cells, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.calculators.calculator import PropertyNotImplementedError
from deploy_cases import rattled_copper

from geocompose.ase import Calculator
from geocompose.deploy import DeployError, StressUnavailable
from geocompose.errors import GeocomposeError, StructureError


def test_dtype_and_default_dtype_choose_the_precision(checkpoint):
    atoms = rattled_copper()
    energies = {}
    for kwargs in ({}, {"dtype": "float32"}, {"default_dtype": "float32"}, {"dtype": torch.float64}):
        calc = Calculator(checkpoint, **kwargs)
        expected = torch.float32 if "float32" in kwargs.values() else torch.float64
        assert calc.dtype == expected and calc.potential.reference.dtype == expected
        atoms.calc = calc
        energies[str(kwargs)] = atoms.get_potential_energy()
    assert energies["{}"] == energies[str({"dtype": torch.float64})]
    # float32 is the same model at round-off: ~1e-7 relative, never exactly equal.
    single = energies[str({"dtype": "float32"})]
    assert single != energies["{}"]
    assert single == pytest.approx(energies["{}"], rel=1e-5)
    with pytest.raises(DeployError, match="dtype='float64' and default_dtype='float32' disagree"):
        Calculator(checkpoint, dtype="float64", default_dtype="float32")
    with pytest.raises(DeployError, match="'half' is not one of float32, float64"):
        Calculator(checkpoint, dtype="half")


def test_per_atom_energies_sum_to_the_energy(checkpoint):
    atoms = rattled_copper((2, 2, 1))
    atoms.calc = Calculator(checkpoint)
    per_atom = atoms.get_potential_energies()
    assert per_atom.shape == (len(atoms),)
    assert per_atom.sum() == pytest.approx(atoms.get_potential_energy(), rel=1e-12)
    assert np.ptp(per_atom) > 0  # rattled: the atoms differ
    # A translated copy permutes nothing: each atom keeps its energy.
    moved = atoms.copy()
    moved.positions += [0.3, -0.2, 0.1]
    moved.calc = Calculator(checkpoint)
    np.testing.assert_allclose(moved.get_potential_energies(), per_atom, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # ASE renamed the numerical stress helper
def test_stress_for_a_periodic_cell_matches_the_numerical_strain_derivative(checkpoint):
    atoms = rattled_copper()
    atoms.calc = Calculator(checkpoint)
    stress = atoms.get_stress()
    numeric = atoms.calc.calculate_numerical_stress(atoms, d=1e-6)
    np.testing.assert_allclose(stress, numeric, atol=1e-8)


def test_stress_without_a_3d_cell_and_unknown_species_are_one_line_errors(checkpoint):
    cluster = molecule("CH4")
    cluster.symbols[:] = "Cu"
    cluster.calc = Calculator(checkpoint)
    assert np.isfinite(cluster.get_potential_energy())
    with pytest.raises(StressUnavailable) as caught:
        cluster.get_stress()
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        "stress needs a cell periodic along all three axes; "
        "structure 0 has pbc=[False, False, False]"
    )
    # ASE's own probes (filters, optimisers) catch PropertyNotImplementedError.
    assert isinstance(caught.value, PropertyNotImplementedError)
    assert isinstance(caught.value, GeocomposeError)

    slab = rattled_copper()
    slab.pbc = [True, True, False]
    slab.calc = Calculator(checkpoint)
    with pytest.raises(StressUnavailable, match=r"pbc=\[True, True, False\]"):
        slab.get_stress()

    water = molecule("H2O")
    water.calc = Calculator(checkpoint)
    with pytest.raises(StructureError) as caught:
        water.get_potential_energy()
    assert str(caught.value) == (
        "atom 0 is O, which model 'deploy_cu' does not know (its species: Cu)"
    )
