"""Vector heads: direct forces (1o per atom), dipole (1o per structure), moved positions."""

from __future__ import annotations

import ase
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import geocompose
from geocompose.errors import BlueprintError
from geocompose.registry import REGISTRY, Kind
from geocompose.testing import exact_rtol, params_strategy
from geocompose.testing import structures as drawn_batches
from geocompose.verification import actions, checks, groups

SPECIES = ["H", "C", "N", "O", "Cu"]


def blueprint(readout: dict, interactions=None, features: int = 6) -> dict:
    return {
        "name": "heads",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": {"type": "radius", "cutoff": 5.0},
        "embedding": {
            "species": SPECIES,
            "node": {"type": "learned", "features": features},
            "radial": {"type": "bessel", "num": 6},
            "envelope": {"type": "cosine"},
        },
        "interactions": interactions or [{"type": "painn", "repeat": 2}],
        "readout": readout,
    }


def structures(seed: int = 0) -> geocompose.Batch:
    rng = np.random.default_rng(seed)
    molecule = ase.Atoms(
        symbols=list(rng.choice(SPECIES, 6)), positions=3.0 * rng.random((6, 3)) + 7.0
    )
    cell = np.array([[4.0, 0.2, 0.0], [0.3, 4.5, 0.1], [0.0, -0.4, 5.0]])
    crystal = ase.Atoms(
        symbols=list(rng.choice(SPECIES, 3)),
        positions=rng.random((3, 3)) @ cell,
        cell=cell,
        pbc=True,
    )
    return geocompose.Batch.from_ase([molecule, crystal])


HEADS = {
    "forces": {"type": "direct_forces", "hidden": [5]},
    "dipole": {"type": "dipole", "hidden": [4, 3]},
    "charge_dipole": {"type": "dipole", "vectors": False, "hidden": []},
    "vector_dipole": {"type": "dipole", "charges": False},
}


@pytest.mark.parametrize("improper", [False, True])
def test_heads_are_equivariant_and_translation_invariant(improper):
    model = geocompose.compile(blueprint(dict(HEADS)), dtype=torch.float64, seed=1)
    batch = structures()
    gen = torch.Generator().manual_seed(3 + improper)
    R = groups.improper_rotation(gen) if improper else groups.haar_rotation(gen)
    t = torch.tensor([10.0, -3.0, 2.5], dtype=torch.float64)
    base = {k: v.detach() for k, v in model(batch).items()}
    moved = model(actions.transform_batch(batch, R, t))
    expected = actions.transform_outputs(base, model.outputs, R, t)
    for name in HEADS:
        assert model.outputs[name].irreps == geocompose.types.parse_irreps("1o")
        assert not model.outputs[name].translates
        assert base[name].abs().max() > 1e-6, f"{name} is trivially zero"
        assert torch.allclose(moved[name], expected[name], atol=1e-12), name


def test_shapes_and_levels():
    model = geocompose.compile(blueprint(dict(HEADS)), dtype=torch.float64, seed=1)
    out = model(structures())
    assert out["forces"].shape == (9, 3)
    assert out["dipole"].shape == out["charge_dipole"].shape == (2, 3)
    assert model.outputs["forces"].level.value == "node"
    assert model.outputs["dipole"].level.value == "structure"


def test_charge_term_only_for_finite_systems():
    """A crystal's dipole from charges would depend on the image of each atom; the head
    leaves it out there, so the pure-charge head gives exactly zero for the crystal
    and the full head is unchanged when an atom is replaced by a periodic image."""
    model = geocompose.compile(blueprint(dict(HEADS)), dtype=torch.float64, seed=1)
    batch = structures()
    out = model(batch)
    assert torch.equal(out["charge_dipole"][1], torch.zeros(3, dtype=torch.float64))
    assert out["charge_dipole"][0].abs().max() > 1e-6
    shifted = batch.positions.clone()
    shifted[-1] += batch.cell[1, 0] - 2 * batch.cell[1, 2]  # the last atom, another image
    again = model(batch.replace(positions=shifted))
    assert torch.allclose(again["dipole"][1], out["dipole"][1], atol=1e-12)


def test_charge_dipole_is_sum_of_charges_times_centred_positions():
    """sum_i q_i (x_i - c) with c the mean position, i.e. sum_i (q_i - mean q) x_i."""
    model = geocompose.compile(
        blueprint({"mu": {"type": "dipole", "vectors": False}}), dtype=torch.float64, seed=2
    )
    head = model.blocks[-1]
    batch = structures().structure(0)
    captured = {}
    # The last gated block's scalar output is the per-atom charge q_i.
    hook = head.stack[-1].register_forward_hook(lambda m, i, o: captured.update(q=o[0].detach()))
    mu = model(batch)["mu"].detach()
    hook.remove()
    q = captured["q"][:, 0]
    expected = ((q - q.mean()).unsqueeze(-1) * batch.positions).sum(0)
    assert torch.allclose(mu[0], expected, atol=1e-12)


def test_direct_forces_after_scalars_only_is_refused():
    spec = blueprint({"forces": {"type": "direct_forces"}}, interactions=[{"type": "schnet"}])
    with pytest.raises(BlueprintError) as err:
        geocompose.compile(spec)
    assert err.value.knob == "readout.forces"
    assert "1o" in err.value.message and "gradient" in err.value.message


def test_pure_charge_dipole_works_after_scalars_only():
    spec = blueprint(
        {"mu": {"type": "dipole", "vectors": False}}, interactions=[{"type": "schnet"}]
    )
    model = geocompose.compile(spec, dtype=torch.float64, seed=0)
    assert model(structures())["mu"].shape == (2, 3)
    with pytest.raises(BlueprintError, match="1o"):
        geocompose.compile(blueprint({"mu": {"type": "dipole"}}, interactions=[{"type": "schnet"}]))
    with pytest.raises(BlueprintError, match="outputs nothing"):
        geocompose.compile(
            blueprint({"mu": {"type": "dipole", "vectors": False, "charges": False}})
        )


def test_output_named_like_a_field_is_refused():
    with pytest.raises(BlueprintError, match="overwrite the field `positions`"):
        geocompose.compile(blueprint({"positions": {"type": "direct_forces"}}))


def test_positions_readout_needs_moved_positions():
    with pytest.raises(BlueprintError, match="updated_positions") as err:
        geocompose.compile(blueprint({"moved": {"type": "positions"}}))
    assert err.value.knob == "readout.moved" and "egnn" in err.value.message


def test_finite_values_and_gradients_on_degenerate_structures():
    model = geocompose.compile(blueprint(dict(HEADS)), dtype=torch.float64, seed=1)
    atoms = ase.Atoms(
        "CHOCu", positions=[[0, 0, 0], [0, 0, 0], [1.0, 0.3, 0], [60.0, 0, 0]]
    )  # coincident + isolated
    batch = geocompose.Batch.from_ase([atoms, ase.Atoms("H", positions=[[1.0, 2.0, 3.0]])])
    positions = batch.positions.clone().requires_grad_(True)
    out = model(batch.replace(positions=positions))
    for name, value in out.items():
        assert torch.isfinite(value).all(), name
    (grad,) = torch.autograd.grad(sum(v.sum() for v in out.values()), positions)
    assert torch.isfinite(grad).all()
    assert torch.equal(
        out["forces"][3], torch.zeros(3, dtype=torch.float64)
    )  # isolated: no vectors
    empty = model(geocompose.Batch.empty())
    assert empty["forces"].shape == (0, 3) and empty["dipole"].shape == (0, 3)


# --------------------------------------------------------------------------- property-based

UPSTREAM = {
    "direct_forces": [{"type": "painn"}, {"type": "gvp", "vectors": 3}],
    "dipole": [{"type": "painn"}, {"type": "gvp", "vectors": 2}, {"type": "schnet", "filters": 4}],
    "positions": [{"type": "egnn", "hidden": 4, "update_positions": True}],
}


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_drawn_heads_transform_as_declared(data):
    """Any head with drawn params after an upstream that accepts it: rotation, reflection,
    translation, permutation and periodic images, on drawn molecules and cells."""
    head = data.draw(st.sampled_from(sorted(UPSTREAM)), label="head")
    params = {
        "type": head,
        **data.draw(params_strategy(REGISTRY.get(Kind.READOUT, head).params), label="params"),
    }
    interaction = data.draw(st.sampled_from(UPSTREAM[head]), label="interaction")
    spec = blueprint(
        {"out": params}, interactions=[interaction], features=data.draw(st.integers(1, 4))
    )
    try:
        model = geocompose.compile(spec, dtype=torch.float64, seed=data.draw(st.integers(0, 9)))
    except BlueprintError as err:  # only the dipole with both terms off, or vectors after schnet
        assert head == "dipole" and ("nothing" in err.message or "1o" in err.message), err.message
        return
    batch = data.draw(drawn_batches(species=SPECIES, cutoff=5.0), label="batch")
    labels = [f"structure {i}" for i in range(batch.num_structures)]
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    tol = exact_rtol(torch.float64)
    measured = {
        "rotation": checks.rotation_check(model, batch, labels, gen, improper=False),
        "reflection": checks.rotation_check(model, batch, labels, gen, improper=True),
        "translation": checks.translation_check(model, batch, labels, gen),
        "permutation": checks.permutation_check(model, batch, labels, gen),
    }
    periodic = [i for i in range(batch.num_structures) if bool(batch.pbc[i].any())]
    if periodic:
        sub = geocompose.Batch.concatenate([batch.structure(i) for i in periodic])
        measured["periodic images"] = checks.periodic_check(
            model, sub, [labels[i] for i in periodic]
        )
    for check, result in measured.items():
        assert result.worst <= tol, (
            f"{head} {params} after {interaction['type']}: {check} {result.worst:.1e} ({result.where})"
        )
