"""The spherical blueprints compile, run, and refuse ill-typed variants with located errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from ase.build import bulk, molecule
from e3nn import o3

import geocompose
from geocompose.blueprint import read_blueprint
from geocompose.data.rotations import haar_rotations
from geocompose.errors import BlueprintError
from geocompose.types.irreps import wigner_d

BLUEPRINTS = Path(__file__).parents[4] / "blueprints"
SPHERICAL = ["tfn", "nequip", "mace", "pseudotensor", "polarizability"]


def raw(name: str) -> dict:
    return copy.deepcopy(
        read_blueprint(BLUEPRINTS / f"{name}.yaml").blueprint.model_dump(mode="json")
    )


@pytest.fixture(scope="module")
def batch():
    atoms = molecule("CH3CH2OH")
    atoms.positions += (
        0.05 * torch.randn(len(atoms), 3, generator=torch.Generator().manual_seed(0)).numpy()
    )
    return geocompose.Batch.from_ase([atoms, bulk("Cu", "fcc", a=3.6, cubic=True)])


@pytest.mark.parametrize("name", SPHERICAL)
def test_blueprint_compiles_and_runs(name, batch):
    model = geocompose.compile(BLUEPRINTS / f"{name}.yaml", dtype=torch.float64, seed=0)
    assert model.derived_symmetry.value == "O(3)"
    out = model(batch)
    for key, ftype in model.outputs.items():
        rows = 2 if ftype.level.value == "structure" else batch.num_atoms
        assert out[key].shape == (rows, ftype.irreps.dim), key
        assert torch.isfinite(out[key]).all(), key


def test_pseudotensor_outputs_flip_as_pseudotensors(batch):
    model = geocompose.compile(BLUEPRINTS / "pseudotensor.yaml", dtype=torch.float64, seed=0)
    assert model.outputs["chirality"].irreps == o3.Irreps("0o")
    assert model.outputs["axial"].irreps == o3.Irreps("1e")
    mol = batch.structure(0)
    out = {k: v.detach() for k, v in model(mol).items()}
    assert (
        out["chirality"].abs().max() > 1e-8 and out["axial"].abs().max() > 1e-6
    )  # not trivially zero
    R = -haar_rotations(1)[0]
    moved = model(mol.replace(positions=mol.positions @ R.T))
    assert torch.allclose(moved["chirality"], -out["chirality"], atol=1e-12)  # 0o flips under -1
    assert torch.allclose(moved["axial"], out["axial"] @ wigner_d(o3.Irreps("1e"), R).T, atol=1e-12)
    assert torch.allclose(moved["forces"], out["forces"] @ R.T, atol=1e-12)


def test_trace_lists_the_instantiated_paths():
    trace = geocompose.check(BLUEPRINTS / "pseudotensor.yaml")
    assert trace.rows  # type-checks without building weights
    model = geocompose.compile(BLUEPRINTS / "pseudotensor.yaml", seed=0)
    second = model.blocks[4]
    assert any("1o x 1o -> 1e" in note for note in second.sig.notes)
    assert "1o x 1o -> 1e" in repr(second)  # `geocompose info` prints module reprs


def test_missing_angular_embedding_is_refused_with_the_fix():
    bp = raw("nequip")
    bp["embedding"]["angular"] = None
    with pytest.raises(BlueprintError) as err:
        geocompose.check(bp)
    assert "edge_angular" in str(err.value) and "embedding.angular.l_max" in str(err.value)
    assert "interactions[0]" in str(err.value)


def test_parity_violating_path_is_refused_naming_it():
    bp = raw("nequip")
    bp["interactions"][0]["tensor_product"]["paths"] = ["0e x 0e -> 0e", "0e x 1o -> 1e"]
    with pytest.raises(BlueprintError, match=r"0e x 1o -> 1e.*parity"):
        geocompose.check(bp)


def test_triangle_violating_path_is_refused_naming_it():
    bp = raw("tfn")
    bp["interactions"][0]["tensor_product"]["paths"] = [[0, 1, 2]]
    with pytest.raises(BlueprintError, match=r"\[0, 1, 2\].*triangle"):
        geocompose.check(bp)


def test_malformed_path_is_a_located_schema_error():
    bp = raw("tfn")
    bp["interactions"][0]["tensor_product"]["paths"] = ["1o x 1o => 1e"]
    with pytest.raises(BlueprintError, match="1o x 1o -> 1e"):
        geocompose.check(bp)


def test_mace_with_mixed_multiplicities_is_refused():
    bp = raw("mace")
    bp["interactions"][0]["features"] = "32x0e + 16x1o"
    with pytest.raises(BlueprintError, match="multiplicity"):
        geocompose.check(bp)


def test_spherical_block_after_a_scalar_block_and_readout_after_spherical():
    """Families compose where types agree: SchNet scalars feed NequIP, whose vectors feed
    a vector readout; SchNet after NequIP is refused (it reads 0e only)."""
    bp = raw("nequip")
    bp["interactions"] = [{"type": "schnet", "filters": 8}, bp["interactions"][0] | {"repeat": 1}]
    bp["readout"]["dipole"] = {"type": "tensor", "irreps": "1x1o"}
    trace = geocompose.check(bp)
    assert str(trace.outputs["dipole"].irreps) == "1x1o"
    bp["interactions"].append({"type": "schnet", "filters": 8})
    with pytest.raises(BlueprintError, match="schnet"):
        geocompose.check(bp)


def test_cartesian_then_spherical_composes_and_stays_equivariant(batch):
    """PaiNN writes Fx0e + Fx1o in node_features; NequIP reads any irreps: the types agree,
    and the composed model is O(3)-equivariant (checked on ethanol under R and -R)."""
    bp = raw("nequip")
    bp["embedding"]["node"] = {"type": "learned", "features": 8}
    bp["interactions"] = [{"type": "painn"}, bp["interactions"][0] | {"repeat": 1}]
    bp["readout"]["dipole"] = {"type": "tensor", "irreps": "1x1o"}
    model = geocompose.compile(bp, dtype=torch.float64, seed=0)
    assert model.blocks[3].sig.writes["node_features"].irreps == o3.Irreps("8x0e + 8x1o")
    mol = batch.structure(0)
    out = {k: v.detach() for k, v in model(mol).items()}
    for R in (haar_rotations(1)[0], -haar_rotations(1)[0]):
        moved = model(mol.replace(positions=mol.positions @ R.T))
        assert torch.allclose(moved["energy"], out["energy"], atol=1e-11)
        assert torch.allclose(
            moved["dipole"], out["dipole"] @ wigner_d(o3.Irreps("1o"), R).T, atol=1e-11
        )
        assert torch.allclose(moved["forces"], out["forces"] @ R.T, atol=1e-11)


@pytest.mark.parametrize("name", ["mace", "tfn"])
def test_last_writes_scalars_is_the_layout_written_out(name, batch):
    """``last_writes_scalars`` on a repeated entry builds the same modules, with the same
    weights from the same seed, as the entry written out with a last copy of 0e features;
    it is a layout, so energy and forces agree exactly."""
    knob = raw(name)
    (entry,) = [e for e in knob["interactions"] if e.get("repeat", 1) > 1][:1]
    entry["last_writes_scalars"] = True
    index = knob["interactions"].index(entry)
    scalars = str(o3.Irreps(entry["features"]).filter(keep=["0e"]).simplify())
    written = copy.deepcopy(knob)
    first = written["interactions"][index] | {"repeat": entry["repeat"] - 1}
    del first["last_writes_scalars"]
    last = first | {"repeat": 1, "features": scalars}
    written["interactions"][index : index + 1] = [first, last]
    a = geocompose.compile(knob, dtype=torch.float64, seed=0)
    b = geocompose.compile(written, dtype=torch.float64, seed=0)
    assert a.blocks[-1 - len(knob["readout"])].sig.writes["node_features"].irreps == o3.Irreps(
        scalars
    )
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    out_a, out_b = a(batch), b(batch)
    assert torch.equal(out_a["energy"], out_b["energy"])
    assert torch.equal(out_a["forces"], out_b["forces"])


def test_last_writes_scalars_saves_the_weights_nothing_reads():
    full = raw("mace")
    del full["interactions"][0]["last_writes_scalars"]
    count = lambda bp: sum(p.numel() for p in geocompose.compile(bp, seed=0).parameters())
    assert count(raw("mace")) < count(full)


def test_a_reader_of_the_vectors_a_scalar_last_layer_drops_is_refused():
    bp = raw("mace")
    bp["readout"]["dipole"] = {"type": "tensor", "irreps": "1x1o"}
    with pytest.raises(BlueprintError, match="dipole") as err:
        geocompose.check(bp)
    assert "1x1o" in str(err.value)
    bp["interactions"][0]["last_writes_scalars"] = False
    assert str(geocompose.check(bp).outputs["dipole"].irreps) == "1x1o"


def test_last_writes_scalars_is_refused_on_blocks_that_have_no_features():
    bp = raw("nequip")
    bp["interactions"] = [{"type": "schnet", "filters": 8, "last_writes_scalars": True}]
    with pytest.raises(BlueprintError, match="last_writes_scalars"):
        geocompose.check(bp)
