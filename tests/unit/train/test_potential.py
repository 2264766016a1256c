"""Potential: reference shift and scale, stress as the strain derivative, force kinds."""

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from train_cases import tiny_painn, tiny_schnet

import geocompose
from geocompose.data.batch import Batch
from geocompose.errors import StructureError
from geocompose.train import Potential


def periodic_batch():
    a = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 2))  # triclinic primitive cell
    a.rattle(0.05, seed=0)
    b = bulk("Cu", "fcc", a=3.7, cubic=True)
    b.rattle(0.05, seed=1)
    return Batch.from_ase([a, b])


def test_shift_and_scale_are_applied_exactly():
    model = geocompose.compile(tiny_schnet(), dtype=torch.float64, seed=0).eval()
    batch = periodic_batch()
    raw = model(batch)
    potential = Potential(model, torch.tensor([-3.5, 7.0], dtype=torch.float64), scale=2.0).eval()
    out = potential(batch)
    counts = batch.counts().to(torch.float64)
    torch.testing.assert_close(out["energy"], 2.0 * raw["energy"].reshape(-1) - 3.5 * counts)
    torch.testing.assert_close(out["forces"], 2.0 * raw["forces"])
    assert not out["energy"].requires_grad  # eval outputs are plain tensors


def test_stress_is_the_strain_derivative():
    potential = Potential(
        geocompose.compile(tiny_schnet(), dtype=torch.float64, seed=1), scale=0.7
    ).eval()
    batch = periodic_batch()
    stress = potential(batch, stress=True)["stress"]  # (2, 3, 3)
    h = 1e-5
    for s in range(2):
        one = batch.structure(s)
        volume = abs(float(torch.linalg.det(one.cell[0])))
        for i, j in [(0, 0), (1, 2), (2, 1), (0, 1)]:
            values = []
            for sign in (1, -1):
                eps = torch.zeros(3, 3, dtype=torch.float64)
                eps[i, j] += sign * h / 2
                eps[j, i] += sign * h / 2
                deform = torch.eye(3, dtype=torch.float64) + eps
                moved = one.replace(positions=one.positions @ deform, cell=one.cell @ deform)
                values.append(float(potential(moved)["energy"][0]))
            numeric = (values[0] - values[1]) / (2 * h) / volume
            assert float(stress[s, i, j]) == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    torch.testing.assert_close(stress, stress.transpose(1, 2))


def test_stress_refused_for_molecules():
    potential = Potential(geocompose.compile(tiny_schnet(), dtype=torch.float64, seed=0)).eval()
    cluster = molecule("CH4")
    cluster.symbols[:] = "Cu"
    with pytest.raises(StructureError, match="periodic"):
        potential(Batch.from_ase(cluster), stress=True)


def test_conservative_and_direct_forces_are_told_apart():
    conservative = Potential(
        geocompose.compile(tiny_painn("gradient"), dtype=torch.float64, seed=0)
    )
    direct = Potential(geocompose.compile(tiny_painn("direct_forces"), dtype=torch.float64, seed=0))
    energy_only = Potential(geocompose.compile(tiny_schnet("none"), dtype=torch.float64, seed=0))
    assert conservative.conservative and conservative.has_forces
    assert direct.has_forces and not direct.conservative
    assert not energy_only.has_forces and not energy_only.conservative
    out = direct.eval()(periodic_batch(), stress=True)
    assert out["forces"].shape == (12, 3) and out["stress"].shape == (2, 3, 3)
    assert np.isfinite(out["stress"].numpy()).all()


def test_a_model_without_energy_is_refused():
    blueprint = tiny_painn("direct_forces")
    blueprint["readout"] = {"forces": {"type": "direct_forces"}}
    with pytest.raises(StructureError, match="no 'energy' output"):
        Potential(geocompose.compile(blueprint, seed=0))
