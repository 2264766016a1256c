"""benchmarks/train_head_to_head.py and train_cu.py: splits, stress, mace-torch's
arguments, and the schnetpack peer (benchmarks/peers/schnetpack_train.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.io import read
from benchmark_scripts import loaded

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
EXAMPLES = Path(__file__).parents[2] / "geocompose" / "data" / "examples"
CU = EXAMPLES / "cu_emt_small.extxyz"
ETHANOL = EXAMPLES / "ethanol_xtb_small.extxyz"


@pytest.fixture(scope="module")
def h2h():
    with loaded("train_head_to_head") as module:
        yield module


def test_time_ordered_split_tests_on_the_last_frames_and_keeps_stress(h2h, tmp_path):
    paths = h2h.write_split(CU, tmp_path, 5, 2, 3)
    frames = read(CU, index=":")
    test = read(paths["test"], index=":")
    assert np.allclose(test[-1].positions, frames[-1].positions)
    assert np.allclose(read(paths["train"], index="0").positions, frames[0].positions)
    # mace-torch's keys, stress included for these 3D-periodic cells
    assert np.allclose(test[0].info["REF_stress"], frames[len(frames) - 3].get_stress())
    assert "REF_forces" in test[0].arrays


def test_shuffled_split_draws_by_seed_and_molecules_get_no_stress(h2h, tmp_path):
    for name in "abm":
        (tmp_path / name).mkdir()
    one = h2h.write_split(CU, tmp_path / "a", 5, 2, 3, shuffle=1)
    two = h2h.write_split(CU, tmp_path / "b", 5, 2, 3, shuffle=2)
    first = [a.positions for a in read(one["train"], index=":")]
    second = [a.positions for a in read(two["train"], index=":")]
    assert not all(np.allclose(a, b) for a, b in zip(first, second))
    molecule = h2h.write_split(ETHANOL, tmp_path / "m", 4, 2, 2)
    assert "REF_stress" not in read(molecule["train"], index="0").info


def test_errors_report_stress_only_where_the_reference_has_one(h2h, tmp_path):
    from ase.io import write

    cells, molecules = tmp_path / "cu.extxyz", tmp_path / "ethanol.extxyz"
    write(cells, read(CU, index=":6"), format="extxyz")
    write(molecules, read(ETHANOL, index=":3"), format="extxyz")
    exact = h2h.train_cu.errors(EMT(), cells)  # the data's own potential: no error
    assert exact["forces_mae_mev_A"] < 1e-3 and exact["stress_mae_mev_A3"] < 1e-3

    class Shifted(EMT):  # stress off by 2 meV/Å^3 in every component
        def calculate(self, *args, **kwargs):
            super().calculate(*args, **kwargs)
            if "stress" in self.results:
                self.results["stress"] = self.results["stress"] + 0.002

    assert h2h.train_cu.errors(Shifted(), cells)["stress_mae_mev_A3"] == pytest.approx(2.0)
    assert "stress_mae_mev_A3" not in h2h.train_cu.errors(EMT(), molecules)
    # a model trained without a stress loss is not scored on stress
    assert "stress_mae_mev_A3" not in h2h.train_cu.errors(EMT(), cells, score_stress=False)


def test_only_the_mace_pair_trains_stress_on_cells(h2h, tmp_path, monkeypatch):
    """The nequip and schnetpack loops train energy and forces only: on cells with
    stress our side of those pairs trains and is scored without it too."""
    split = h2h.write_split(CU, tmp_path, 4, 2, 2)
    seen = {}
    monkeypatch.setattr(
        h2h.train_cu,
        "run_geocompose",
        lambda pair, s, e, seed, out, hyper, bp: seen.update({pair: hyper["stress_weight"]}) or {},
    )
    for pair in ("mace", "nequip", "painn"):
        h2h.run_geocompose(pair, split, 1, 0, tmp_path / pair)
    assert seen == {"mace": 1.0, "nequip": 0.0, "painn": 0.0}


def test_mace_torch_gets_its_stress_loss_with_the_same_weight(h2h, tmp_path):
    split = {name: tmp_path / f"{name}.extxyz" for name in ("train", "valid")}
    hyper = h2h.hyper_of("mace")
    args = h2h.train_cu.mace_arguments(split, 2, 0, tmp_path, hyper, stress=True)
    loss = args[args.index("--loss") + 1]
    assert loss == "stress" and args[args.index("--stress_weight") + 1] == "1.0"
    assert args[args.index("--stress_key") + 1] == "REF_stress"
    plain = h2h.train_cu.mace_arguments(split, 2, 0, tmp_path, hyper, stress=False)
    assert plain[plain.index("--loss") + 1] == "weighted" and "--stress_weight" not in plain


def test_painn_pair_is_registered_with_its_own_rate(h2h):
    assert h2h.REFERENCE_ENGINE["painn"] == "schnetpack"
    assert "schnetpack" in h2h.REFERENCE_RUNNERS
    assert h2h.hyper_of("painn")["lr"] == 1e-3 and h2h.hyper_of("mace")["lr"] == 1e-2


def _schnetpack_peer():
    # (benchmarks/painn.py's loader leaves a spec-less package in sys.modules)
    if "schnetpack" not in sys.modules and importlib.util.find_spec("schnetpack") is None:
        pytest.skip("schnetpack not on the path (PYTHONPATH=/work/venvs/spk-lib)")
    sys.path.insert(0, str(BENCHMARKS / "peers"))
    import schnetpack_train

    return schnetpack_train


@pytest.mark.slow  # schnetpack's import and a 590k-weight model: 35 s under load
def test_schnetpack_potential_forces_are_minus_the_energy_gradient():
    peer = _schnetpack_peer()
    import torch

    frames = read(ETHANOL, index=":4")
    species, e0, scale = peer.fitted_reference(frames)
    torch.manual_seed(0)
    model = peer.SchnetpackPotential(species, e0, scale).double()
    calc = peer.SchnetpackCalculator(model)
    atoms = frames[0].copy()
    atoms.calc = calc
    forces = atoms.get_forces()
    # float32 inputs: compare with a step large enough for float32 energies
    h, k = 1e-2, (3, 1)
    shifted = []
    for sign in (1, -1):
        probe = atoms.copy()
        probe.positions[k] += sign * h
        probe.calc = calc
        shifted.append(probe.get_potential_energy())
    assert -(shifted[0] - shifted[1]) / (2 * h) == pytest.approx(forces[k], abs=2e-3)
    # the fixed shift: the least-squares E0s summed over the atoms
    batch = peer.collate([peer.structure(atoms, targets=False)])
    with torch.no_grad():
        model.head.outnet[-1].weight.zero_()
        model.head.outnet[-1].bias.zero_()
    energy = float(model(batch)["energy"].detach()[0])
    expected = sum(e0[species.index(z)] for z in atoms.numbers)
    assert energy == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow  # 4 training steps and 16 scored structures: 90 s under load
def test_schnetpack_run_trains_and_reports_the_benchmark_row(tmp_path, h2h):
    peer = _schnetpack_peer()
    split = h2h.write_split(ETHANOL, tmp_path, 16, 8, 8)
    row = peer.run(split, 2, 0, tmp_path / "run", h2h.hyper_of("painn"))
    assert row["engine"] == "schnetpack" and row["epochs"] == 2
    assert row["weights"] > 500_000  # 128 features, 3 interactions
    assert row["structures_per_s"] > 0 and np.isfinite(row["forces_mae_mev_A"])
    assert (tmp_path / "run" / "best.pt").exists()


def test_the_full_last_layer_variant_is_mace_yaml_but_its_last_layer(h2h):
    """benchmarks/mace-full-last-layer.yaml tracks the shipped mace.yaml: the same
    blueprint without ``last_writes_scalars``; ``--blueprint mace=...`` reaches it with the
    benchmark's species and embedding."""
    import yaml

    variant_path = BENCHMARKS / "mace-full-last-layer.yaml"
    shipped = h2h.geocompose_blueprint("mace", ["H", "C", "O"])
    variant = h2h.geocompose_blueprint("mace", ["H", "C", "O"], variant_path)
    (entry,) = shipped["interactions"]
    assert entry.pop("last_writes_scalars") is True
    for data in (shipped, variant):
        del data["name"], data["description"]
    assert variant == shipped
    assert yaml.safe_load(variant_path.read_text())["embedding"]["node"] == {"type": "one_hot"}


def test_the_full_last_layer_variant_verifies():
    from geocompose.verification import verify

    report = verify(BENCHMARKS / "mace-full-last-layer.yaml", samples=1, seed=0)
    assert report.passed and report.claim == "O(3)", report.text()
