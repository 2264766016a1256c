"""Per-species reference energies by least squares; the force scale."""

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from geocompose.data.dataset import Dataset
from geocompose.train.reference import fit_reference, force_scale


def structure(n_cu: int, n_au: int, energy: float, force: float) -> Atoms:
    atoms = Atoms(
        "Cu" * n_cu + "Au" * n_au, positions=np.arange(3 * (n_cu + n_au)).reshape(-1, 3) * 1.1
    )
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.full((len(atoms), 3), force))
    return atoms


def test_least_squares_recovers_per_species_energies():
    counts = [(1, 0), (2, 1), (0, 3), (4, 4), (3, 1)]
    data = Dataset.from_atoms([structure(c, a, -3.5 * c - 1.25 * a, 0.5) for c, a in counts])
    reference = fit_reference(data, range(len(data)), ["H", "Cu", "Au"])
    np.testing.assert_allclose(reference, [0.0, -3.5, -1.25], atol=1e-12)  # absent H: 0
    assert force_scale(data, range(len(data)), reference, ["H", "Cu", "Au"]) == pytest.approx(0.5)


def test_only_the_training_indices_are_used():
    data = Dataset.from_atoms([structure(2, 0, -7.0, 1.0), structure(2, 0, 1000.0, 3.0)])
    assert fit_reference(data, [0], ["Cu"]) == pytest.approx([-3.5])
    assert force_scale(data, [0], np.array([-3.5]), ["Cu"]) == pytest.approx(1.0)


def test_scale_without_forces_is_the_residual_energy_per_atom():
    atoms = [structure(2, 0, e, 0.0) for e in (-7.2, -6.8)]
    for a in atoms:
        a.calc = SinglePointCalculator(a, energy=a.calc.results["energy"])
    data = Dataset.from_atoms(atoms)
    reference = fit_reference(data, [0, 1], ["Cu"])
    assert reference == pytest.approx([-3.5])
    assert force_scale(data, [0, 1], reference, ["Cu"]) == pytest.approx(0.1)
