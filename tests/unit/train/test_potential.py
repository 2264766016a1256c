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


def _two_pass_outputs(potential, batch):
    """Forces and stress as two backward passes would take them: the model's forces,
    then the energy's strain gradient on its own (the form before issue 16's fix)."""
    from geocompose.train.potential import _strained

    strained, strain = _strained(batch)
    with torch.enable_grad():
        out = potential.model(strained)
        energy = potential.scale * out["energy"].reshape(-1)
        (grad,) = torch.autograd.grad(energy.sum(), strain, create_graph=potential.training)
    volume = torch.linalg.det(strained.cell).abs().view(-1, 1, 1)
    return potential.scale * out["forces"], grad / volume


@pytest.mark.parametrize("forces", ["gradient", "direct_forces"])
@pytest.mark.parametrize("training", [False, True])
def test_stress_taken_with_the_forces_equals_its_own_backward_pass(training, forces):
    """One backward pass for forces and stress (the gradient readout differentiates the
    strain too) gives what two passes give: outputs and, training, the loss's weight
    gradients through the second derivatives. A direct-forces head keeps the strain's
    own pass."""
    potential = Potential(
        geocompose.compile(tiny_painn(forces), dtype=torch.float64, seed=2), scale=0.7
    ).train(training)
    batch = periodic_batch()
    out = potential(batch, stress=True)
    two_pass_forces, stress = _two_pass_outputs(potential, batch)
    from geocompose.train.potential import _strained

    strained, strain = _strained(batch)
    taken_with_forces = "strain_derivative" in potential.model(strained, strain=strain)
    assert taken_with_forces == (forces == "gradient")
    torch.testing.assert_close(out["forces"], two_pass_forces, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out["stress"], stress, rtol=1e-12, atol=1e-12)
    if training:
        weights = [p for p in potential.parameters() if p.requires_grad]
        one = (out["forces"] ** 2).sum() + (out["stress"] ** 2).sum()
        two = (two_pass_forces**2).sum() + (stress**2).sum()
        for a, b in zip(
            torch.autograd.grad(one, weights, allow_unused=True),
            torch.autograd.grad(two, weights, allow_unused=True),
            strict=True,
        ):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


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
