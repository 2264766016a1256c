"""``geocompose export`` formats and refusals, and ``geocompose verify --export``: exit
codes, one-line errors for what cannot export, the interaction range and dtype of the
TorchScript twin, a ``.pt2`` and a metatomic file verified as black boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from deploy_cases import copper_molecule, rattled_copper, triclinic_copper
from train_cases import tiny_painn, tiny_schnet  # on the path through conftest.py

import geocompose
from geocompose.ase import Calculator
from geocompose.cli.main import main
from geocompose.data.batch import Batch
from geocompose.deploy.torchscript import TwinOutputs, inference_twin, script_program
from geocompose.train import Potential, save_checkpoint
from geocompose.train.export import ExportedPotential, ExportError, graph_inputs

pytest.importorskip("metatomic.torch", reason="the deploy extra installs metatomic")
from metatomic_ase import MetatomicCalculator

from geocompose.deploy.metatomic import interaction_range, save_metatomic

BLUEPRINTS = Path(__file__).parents[2] / "blueprints"


def test_direct_forces_export_as_non_conservative_force(tmp_path):
    """A direct-force model's head is metatomic's ``non_conservative_force``: with
    ``non_conservative="forces"`` metatomic-ase gives our forces (less their mean, which
    it removes) and our stress (the energy's strain derivative, in both)."""
    model = geocompose.compile(tiny_painn("direct_forces"), dtype=torch.float64, seed=1)
    potential = Potential(model, scale=0.7).eval()
    example = Batch.from_ase([triclinic_copper(), copper_molecule()])
    path = save_metatomic(potential, tmp_path / "direct.pt", example)
    for atoms in (triclinic_copper(), copper_molecule()):
        ours = atoms.copy()
        ours.calc = Calculator(potential)
        atoms.calc = MetatomicCalculator(
            str(path), non_conservative="forces", check_consistency=True
        )
        assert atoms.get_potential_energy() == pytest.approx(ours.get_potential_energy(), rel=1e-12)
        forces = ours.get_forces()
        assert np.abs(forces.mean(axis=0)).max() > 0  # a direct head: a net force
        np.testing.assert_allclose(
            atoms.get_forces(),
            forces - forces.mean(axis=0),
            rtol=0,
            atol=1e-12 * np.abs(forces).max(),
        )
        if atoms.pbc.all():
            np.testing.assert_allclose(atoms.get_stress(), ours.get_stress(), rtol=0, atol=1e-15)


def test_bad_input_exit_codes(checkpoint, tmp_path, capsys):
    out = str(tmp_path / "m.pt")
    assert main(["export", str(tmp_path / "missing.pt"), out, "--format", "metatomic"]) == 2
    assert "missing.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:  # argparse refuses an unknown format
        main(["export", str(checkpoint), out, "--format", "xyz"])
    assert caught.value.code == 2


@pytest.mark.parametrize("kind", ["pt2", "metatomic"])
def test_verify_takes_an_export_as_a_black_box(checkpoint, exported, tmp_path, kind, capsys):
    """The battery of ``verify --calculator``, O(3) claimed from the command line; the
    species and cutoff are the file's own."""
    if kind == "pt2":
        path = tmp_path / "cu.pt2"
        assert main(["export", str(checkpoint), str(path)]) == 0  # structures drawn: no DATA
    else:
        path = exported["float64"]
    code = main(
        ["verify", "--export", str(path), "--samples", "1", "--json", str(tmp_path / "report.json")]
    )
    assert code == 0, capsys.readouterr().out[-3000:]
    (entry,) = json.loads((tmp_path / "report.json").read_text())["reports"]
    report = entry["report"]
    assert report["name"] == f"deploy_cu ({kind})"
    checks = {c["name"]: c for c in report["checks"]}
    for name in ("rotation", "reflection", "translation", "permutation", "stress"):
        assert checks[name]["verdict"] == "pass", checks[name]


def test_verify_refuses_a_file_that_is_no_export(tmp_path, capsys):
    bogus = tmp_path / "x.pt"
    bogus.write_text("not a model")
    assert main(["verify", "--export", str(bogus)]) == 2
    assert "neither a .pt2 file of `geocompose export` nor a metatomic model" in (
        capsys.readouterr().err
    )
    assert main(["verify", "--export", str(tmp_path / "missing.pt")]) == 2


def test_interaction_range_is_the_reach_times_the_message_passing_steps():

    blueprint = BLUEPRINTS / "schnet.yaml"
    model = geocompose.compile(geocompose.load(blueprint).blueprint, seed=0)
    assert interaction_range(Potential(model)) == pytest.approx(6 * 5.0)  # 6 interactions, 5 Å


def test_the_twin_runs_in_the_potentials_dtype_whatever_the_example():
    """A float64 example (what Batch.from_ase gives) traces a float32 twin."""

    potential = Potential(geocompose.compile(tiny_schnet(), dtype=torch.float32, seed=1)).eval()
    twin = inference_twin(potential, Batch.from_ase([triclinic_copper(), copper_molecule()]))
    batch = Batch.from_ase([rattled_copper((3, 1, 1)), copper_molecule()], dtype=torch.float32)
    inputs = graph_inputs(potential, batch)
    got, expected = twin(*inputs), TwinOutputs(potential)(*inputs)
    assert got[0].dtype == torch.float32
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=0)


def test_a_model_torch_export_cannot_trace_is_refused_in_one_line(tmp_path, capsys):
    """DimeNet++ builds triplets from tensor values: torch.export gives up (~3-10 s)."""

    path = BLUEPRINTS / "dimenet_pp.yaml"
    blueprint = geocompose.load(path).blueprint.model_dump(mode="json")
    blueprint["embedding"]["species"] = ["Cu"]
    model = geocompose.compile(blueprint, dtype=torch.float64, seed=0)
    state = {
        "blueprint": blueprint,
        "species": ["Cu"],
        "dtype": "float64",
        "weights": Potential(model).state_dict(),
        "ema": None,
    }
    save_checkpoint(state, tmp_path / "dimenet.pt")
    code = main(
        ["export", str(tmp_path / "dimenet.pt"), str(tmp_path / "m.pt"), "--format", "metatomic"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err  # torch's partial graph print is not passed on
    assert err.startswith("torch.export failed for 'dimenet_pp': GuardOnDataDependentSymNode")


def test_a_graph_torchscript_cannot_take_is_refused_naming_the_node():
    """A planted program with a data-dependent branch (torch.cond): its branches are
    submodules, not tensors, and the rewrite says which node."""

    class Branching(torch.nn.Module):
        def forward(self, x):
            return (torch.cond(x.sum() > 0, lambda x: x * 2, lambda x: x - 1, (x,)),)

    program = torch.export.export(Branching(), (torch.ones(3),))
    with pytest.raises(ExportError) as caught:
        script_program(program, "planted")
    assert str(caught.value).startswith(
        "TorchScript cannot compile 'planted': node true_graph_0 reads 'true_graph_0'"
    )


def test_pt2_export_takes_dtype_and_draws_structures_without_data(checkpoint, tmp_path, capsys):
    path = tmp_path / "cu32.pt2"
    assert main(["export", str(checkpoint), str(path), "--dtype", "float32"]) == 0
    assert ExportedPotential(path).metadata["dtype"] == "float32"
    out = capsys.readouterr().out
    assert "(deploy_cu, pt2, float32)" in out
    assert "drawn cells and molecules of Cu" in out
