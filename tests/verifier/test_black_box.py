"""Black boxes: any ASE calculator gets the same report; EMT holds every claim, and
planted calculators (a wrong stress, an external field) are caught by the one check
that sees them."""

import inspect
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT

from geocompose.cli.main import main

BLUEPRINTS = Path(__file__).parents[2] / "blueprints"
from geocompose.types.group import Group
from geocompose.verification import Verdict, verify
from geocompose.verification.calculator import calculator_subject

SPECIES = ["Cu", "Al", "Ni"]


class DoubledStress(EMT):
    """EMT with its stress doubled: energies and forces untouched."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        if "stress" in self.results:
            self.results["stress"] = 2 * self.results["stress"]


class ExternalField(EMT):
    """EMT plus a uniform field along x: E += 0.05 sum_i x_i (not rotation-invariant)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        x = self.atoms.positions[:, 0]
        self.results["energy"] = self.results["energy"] + 0.05 * float(np.sum(x))
        self.results["free_energy"] = self.results["energy"]
        forces = self.results["forces"].copy()
        forces[:, 0] -= 0.05
        self.results["forces"] = forces


def by_name(report):
    return {c.name: c for c in report.checks}


def test_emt_holds_every_claim_with_its_stress(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "emt.json"
    argv = ["verify", "--calculator", "ase.calculators.emt:EMT", "--species", *SPECIES]
    assert main([*argv, "--samples", "2", "--json", str(out)]) == 0, capsys.readouterr().out
    report = json.loads(out.read_text())["reports"][0]["report"]
    checks = {c["name"]: c for c in report["checks"]}
    assert report["strategy"] == "black box" and report["passed"]
    assert checks["stress"]["verdict"] == "pass" and checks["stress"]["error"] < 1e-6
    assert checks["rotation"]["verdict"] == "pass" and checks["conservative forces"]["error"] < 1e-6
    assert checks["locality"]["verdict"] == "measured"  # no --reach: not claimed


def test_a_wrong_stress_is_caught_by_the_stress_check_only():
    report = verify(calculator_subject(DoubledStress(), species=SPECIES), samples=1)
    assert {c.name for c in report.failures} == {"stress"}, report.text()
    assert by_name(report)["stress"].error > 0.1


def test_an_external_field_breaks_rotation_and_the_cli_exits_1(tmp_path, monkeypatch, capsys):
    report = verify(calculator_subject(ExternalField(), species=SPECIES), samples=1)
    assert {"rotation", "reflection"} <= {c.name for c in report.failures}
    assert by_name(report)["translation"].verdict is Verdict.FAIL
    assert by_name(report)["conservative forces"].verdict is Verdict.PASS  # F = -dE/dx still
    # the same calculator from the command line, as a user's own module
    (tmp_path / "field_calc.py").write_text(inspect.getsource(sys.modules[__name__]))
    monkeypatch.chdir(tmp_path)
    argv = ["verify", "--calculator", "field_calc:ExternalField", "--species", "Cu", "-q"]
    assert main([*argv, "--samples", "1"]) == 1
    assert "failed: rotation" in capsys.readouterr().out


def test_no_claim_means_measured_only():
    subject = calculator_subject(ExternalField(), species=["Cu"], claim=Group.NONE, periodic=False)
    report = verify(subject, samples=1)
    assert by_name(report)["rotation"].verdict is Verdict.MEASURED
    assert report.passed, report.text()


def test_a_stated_reach_makes_locality_a_claim():
    subject = calculator_subject(EMT(), species=["Cu"], reach=3.0, periodic=False)
    report = verify(subject, samples=1)
    # EMT's neighbour list reaches further than 3 Å: a stated reach that is too short fails.
    assert by_name(report)["locality"].verdict is Verdict.FAIL


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--calculator", "nocolon"], "write MODULE:FACTORY"),
        (["--calculator", "no_such_module:X", "--species", "Cu"], "no module named"),
        (["--calculator", "ase.calculators.emt:EMT", "--kwargs", "[1]"], "JSON object"),
        (["--calculator", "ase.calculators.emt:EMT", "--kwargs", "{"], "not valid JSON"),
        (["--calculator", "ase.calculators.emt:EMT"], "--species"),
        ([], "give blueprint PATHs"),
    ],
)
def test_bad_black_box_arguments_exit_2(argv, message, capsys):
    assert main(["verify", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_checkpoint_is_verified_with_its_trace_and_the_potentials_stress(tmp_path, capsys):
    from geocompose.compiler import compile as compile_blueprint
    from geocompose.train.checkpoint import save_checkpoint
    from geocompose.train.potential import Potential

    blueprint = {
        "name": "tiny-potential",
        "symmetry": {"group": "O(3)"},
        "graph": {"type": "radius", "cutoff": 3.5},
        "embedding": {
            "species": ["Cu", "Al"],
            "node": {"type": "learned", "features": 4},
            "radial": {"type": "bessel", "num": 4},
            "envelope": {"type": "polynomial"},
        },
        "interactions": [{"type": "schnet", "filters": 4}],
        "readout": {"energy": {"type": "sum", "hidden": [4]}, "forces": {"type": "gradient"}},
    }
    potential = Potential(compile_blueprint(blueprint, seed=1), scale=2.0)
    state = {"dtype": "float32", "blueprint": blueprint, "weights": potential.state_dict()}
    path = save_checkpoint({**state, "ema": None}, tmp_path / "tiny.pt")
    out = tmp_path / "tiny.json"
    assert main(["verify", "--checkpoint", str(path), "--samples", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())["reports"][0]["report"]
    checks = {c["name"]: c for c in report["checks"]}
    assert report["name"] == "tiny-potential" and report["weights"] > 0
    assert checks["stress"]["verdict"] == "pass" and checks["stress"]["error"] < 1e-6
    assert checks["float32 rotation"]["verdict"] == "pass"
    assert main(["verify", "--checkpoint", str(tmp_path / "missing.pt")]) == 2


def test_verify_without_anything_to_verify_exits_2(capsys):
    assert main(["verify"]) == 2
    err = capsys.readouterr().err
    assert (
        "give blueprint PATHs, --calculator MODULE:FACTORY, --checkpoint FILE or --export FILE"
        in err
    )
    assert "Traceback" not in err


def test_given_structures_replace_the_random_ones():
    from ase.build import bulk

    cluster = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)[:13]
    cluster.pbc, cluster.cell = False, None
    cell = bulk("Cu", "fcc", a=3.61, cubic=True)
    cell.rattle(0.05, seed=0)
    subject = calculator_subject(EMT(), species=["Cu"])
    report = verify(subject, structures=[cluster, cell])
    rows = by_name(report)
    assert report.passed, report.text()
    assert rows["stress"].detail.endswith("structure 1 (Cu4)")
    assert "structure 0 (Cu13)" in rows["locality"].detail
    assert not any(re.search(r"\b(molecule|cell) \d", c.detail) for c in report.checks)


def test_a_float32_checkpoint_is_verified_as_compiled_in_float64(tmp_path):
    """Constants computed at build time (MACE's Clebsch-Gordan tables) keep float32
    rounding when a float32 model is cast with ``.double()``: ~1e-10 rotation errors,
    over the exact tolerance. The checkpoint is rebuilt in float64 instead."""
    import torch
    import yaml

    from geocompose.cli.black_box import checkpoint_subject
    from geocompose.compiler import compile as compile_blueprint
    from geocompose.train.checkpoint import save_checkpoint
    from geocompose.train.potential import Potential
    from geocompose.verification import engine

    with open(BLUEPRINTS / "mace.yaml") as handle:
        blueprint = yaml.safe_load(handle)
    blueprint["embedding"]["species"] = ["Cu"]
    blueprint["interactions"][0].update(features="4x0e + 4x1o", radial_hidden=[4], repeat=1)
    model = compile_blueprint(blueprint, seed=0, dtype=torch.float32)
    state = {"dtype": "float32", "blueprint": blueprint, "ema": None}
    path = save_checkpoint({**state, "weights": Potential(model).state_dict()}, tmp_path / "m.pt")
    report = engine.verify(checkpoint_subject(str(path)), samples=1, seed=0)
    rotation = next(c for c in report.checks if c.name == "rotation")
    assert rotation.error < 1e-12, rotation.error
