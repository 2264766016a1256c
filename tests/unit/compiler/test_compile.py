"""Compiler: type propagation, located refusals, derived guarantee, trace and graph."""

import pytest
import torch
from ase.build import molecule

import geocompose
from geocompose.blueprint import read_blueprint
from geocompose.errors import BlueprintError, StructureError

SCHNET = """\
name: tiny
symmetry: {group: O(3), strategy: built_in}
graph: {type: radius, cutoff: 4.0}
embedding:
  species: [H, C, O]
  node: {type: learned, features: 8}
  radial: {type: gaussian, num: 6}
  envelope: {type: cosine}
interactions:
  - {type: schnet, filters: 8, repeat: 2}
readout:
  energy: {type: sum, hidden: [4], per_atom: atomic_energy}
  forces: {type: gradient, of: energy}
"""


def compile_text(text, **kw):
    return geocompose.compile(read_blueprint("tiny.yaml", text=text), **kw)


def test_compile_returns_model_with_declared_outputs():
    model = compile_text(SCHNET, dtype=torch.float64, seed=0)
    out = model(geocompose.Batch.from_ase([molecule("H2O"), molecule("CH4")]))
    assert out["energy"].shape == (2, 1)
    assert out["atomic_energy"].shape == (8, 1)
    assert out["forces"].shape == (8, 3)
    assert str(model.outputs["forces"].irreps) == "1x1o"
    assert model.symmetry.value == "O(3)" and model.species == ("H", "C", "O")
    # per-atom energies sum to the energy
    assert torch.allclose(out["atomic_energy"][:3].sum(), out["energy"][0, 0])


def test_seeded_compile_is_reproducible_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = compile_text(SCHNET, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = compile_text(SCHNET, seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_repeat_makes_independent_blocks():
    model = compile_text(SCHNET)
    knobs = [row.knob for row in model.trace.rows]
    assert "interactions[0]#1" in knobs and "interactions[0]#2" in knobs


def test_gradient_of_missing_output_is_refused_with_location():
    text = SCHNET.replace(
        "forces: {type: gradient, of: energy}", "forces: {type: gradient, of: dipole}"
    )
    with pytest.raises(BlueprintError) as err:
        compile_text(text)
    message = str(err.value)
    assert "tiny.yaml:13:" in message and "readout.forces" in message and "dipole" in message


def test_derivative_readouts_run_last_whatever_the_order_written():
    text = SCHNET.replace(
        "  energy: {type: sum, hidden: [4], per_atom: atomic_energy}\n  forces: {type: gradient, of: energy}\n",
        "  forces: {type: gradient, of: energy}\n  energy: {type: sum, hidden: [4]}\n",
    )
    model = compile_text(text)
    assert [row.knob for row in model.trace.rows][-2:] == ["readout.energy", "readout.forces"]


def test_booleans_and_huge_sizes_are_refused_with_the_knob():
    with pytest.raises(BlueprintError, match="features.*boolean"):
        compile_text(SCHNET.replace("features: 8", "features: true"))
    with pytest.raises(
        BlueprintError, match=r"tiny.yaml:10:\d+: interactions\[0\].repeat: .*<= 64"
    ):
        compile_text(SCHNET.replace("repeat: 2", "repeat: 100000000"))
    with pytest.raises(BlueprintError, match=r"tiny.yaml:6:\d+: embedding.node.features: must be <= 4096"):
        compile_text(SCHNET.replace("features: 8", "features: 100000000000"))


def test_unknown_species_in_structure_is_a_clear_error():
    model = compile_text(SCHNET)
    with pytest.raises(StructureError, match="atom 0 is N"):
        model(geocompose.Batch.from_ase([molecule("NH3")]))


def test_claim_beyond_derived_is_kept_for_the_verifier_to_judge():
    trace = geocompose.check(read_blueprint("tiny.yaml", text=SCHNET))
    assert trace.claim.value == "O(3)" and trace.derived.value == "O(3)"
    assert "claim O(3) (exact, via built_in); derived O(3)" in trace.summary()


def test_trace_graph_and_dot(tmp_path):
    model = compile_text(SCHNET)
    g = model.trace.graph()
    blocks = [n for n, d in g.nodes(data=True) if d["kind"] == "block"]
    assert len(blocks) == len(model.trace.rows)
    import networkx as nx

    assert nx.is_directed_acyclic_graph(g)
    dot = model.trace.to_dot()
    assert dot.startswith('digraph "tiny"') and "schnet" in dot
    png = tmp_path / "g.png"
    model.trace.draw_png(str(png))
    assert png.stat().st_size > 1000


def test_weights_in_trace_match_module():
    model = compile_text(SCHNET)
    assert model.trace.weights == sum(p.numel() for p in model.parameters())


def test_empty_batch_and_single_atom():
    model = compile_text(SCHNET, dtype=torch.float64)
    out = model(geocompose.Batch.empty())
    assert out["energy"].shape == (0, 1) and out["forces"].shape == (0, 3)
    from ase import Atoms

    out = model(geocompose.Batch.from_ase([Atoms("H", positions=[[0, 0, 0]])]))
    assert torch.isfinite(out["energy"]).all() and torch.equal(
        out["forces"], torch.zeros(1, 3, dtype=torch.float64)
    )


def test_coincident_atoms_give_finite_outputs_and_gradients():
    from ase import Atoms

    model = compile_text(SCHNET.replace("gaussian, num: 6", "bessel, num: 6"), dtype=torch.float64)
    atoms = Atoms("HHO", positions=[[0, 0, 0], [0, 0, 0], [0.9, 0.1, 0]])
    out = model(geocompose.Batch.from_ase([atoms]))
    assert torch.isfinite(out["energy"]).all() and torch.isfinite(out["forces"]).all()


def test_force_training_through_coincident_atoms_has_finite_second_derivatives():
    from ase import Atoms

    model = compile_text(SCHNET.replace("gaussian, num: 6", "bessel, num: 6"), dtype=torch.float64)
    model.train()
    atoms = Atoms("HHO", positions=[[0, 0, 0], [0, 0, 0], [0.9, 0.1, 0]])
    out = model(geocompose.Batch.from_ase([atoms]))
    loss = out["forces"].pow(2).sum()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(
        loss, params, allow_unused=True
    )  # the energy head's last bias has none
    assert all(torch.isfinite(g).all() for g in grads if g is not None)
    assert sum(g is not None for g in grads) > len(params) // 2
