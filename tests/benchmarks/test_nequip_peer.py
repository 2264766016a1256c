"""benchmarks/nequip.py and benchmarks/peers/nequip_train.py: the widths given to nequip
are the blueprint's, and the benchmark's geocompose model has the layout it claims.

nequip itself is not imported here (it lives in its own venv); the one check that needs
it runs only where ``/work/venvs/nequip`` exists.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).parents[2]
NEQUIP_PYTHON = Path("/work/venvs/nequip/bin/python")


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def peer():
    return load("nequip_train_peer", ROOT / "benchmarks" / "peers" / "nequip_train.py")


@pytest.fixture(scope="module")
def bench():
    return load("nequip_benchmark", ROOT / "benchmarks" / "nequip.py")


def test_peer_widths_are_the_shipped_blueprints(peer):
    from geocompose.nn.interaction.spherical import SphericalParams

    blueprint = yaml.safe_load((ROOT / "blueprints" / "nequip.yaml").read_text())
    layer, last = blueprint["interactions"]  # `repeat` hidden layers, then scalars only
    embedding = blueprint["embedding"]
    widths = peer.WIDTHS
    assert widths["features"] == layer["features"]
    assert last["features"] == peer.scalar_part(layer["features"])
    assert widths["layers"] == layer["repeat"] + 1
    assert widths["l_max"] == layer["tensor_product"]["l_max"] == embedding["angular"]["l_max"]
    assert [widths["radial_hidden"]] == layer["radial_hidden"]
    assert widths["bessel"] == embedding["radial"]["num"]
    assert widths["envelope_p"] == embedding["envelope"]["p"]
    assert widths["cutoff"] == blueprint["graph"]["cutoff"]
    assert [widths["readout_hidden"]] == blueprint["readout"]["energy"]["hidden"]
    expected_avg = layer.get(
        "avg_neighbours", SphericalParams.model_fields["avg_neighbours"].default
    )
    assert widths["avg_neighbours"] == expected_avg


def test_peer_config_maps_the_hyperparameters(peer, tmp_path):
    hyper = {"batch_structures": 8, "lr": 0.01, "ema_decay": 0.99, "clip": 10.0,
             "energy_weight": 1.0, "forces_weight": 10.0}  # fmt: skip
    split = {name: tmp_path / f"{name}.extxyz" for name in ("train", "valid", "test")}
    config = peer.nequip_config(split, 3, 1, tmp_path, hyper, ["H", "C", "O"])
    model = config["training_module"]["model"]
    assert model["feature_irreps_hidden"] == ["16x0e + 8x1o + 4x2e"] * 2 + ["16x0e"]
    assert model["irreps_edge_sh"] == "1x0e + 1x1o + 1x2e"
    assert model["radial_mlp_width"] == [32] * 3 and model["type_names"] == ["H", "C", "O"]
    module = config["training_module"]
    assert module["optimizer"]["lr"] == 0.01 and module["ema_decay"] == 0.99
    assert module["loss"]["coeffs"] == {"total_energy": 1.0, "forces": 10.0}
    assert config["trainer"]["max_epochs"] == 3 and config["trainer"]["gradient_clip_val"] == 10
    assert config["data"]["train_dataloader"]["batch_size"] == 8
    assert config["data"]["train_file_path"] == str(split["train"])


def test_benchmark_model_has_nequips_layout(bench):
    import geocompose

    model = geocompose.compile(bench.blueprint(forces=True), dtype=torch.float32, seed=0)
    first, second, last = (b for b in model.blocks if type(b).__name__ == "NequIPInteraction")
    assert first.sc is None and second.sc is not None and last.sc is not None
    assert not (first.residual or second.residual or last.residual)
    assert str(last.irreps_out["node_features"]) == "16x0e"
    # The weight count the docstring accounts for, part by part.
    assert sum(p.numel() for p in model.parameters()) == 12_981
    sc = sum(p.numel() for n, p in model.named_parameters() if ".sc." in n)
    assert sc == 3_136


@pytest.mark.slow
@pytest.mark.skipif(not NEQUIP_PYTHON.exists(), reason="nequip venv not installed")
def test_nequip_side_weights_differ_only_where_the_docstring_says(bench):
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('b', {str(ROOT / 'benchmarks' / 'nequip.py')!r})\n"
        "b = importlib.util.module_from_spec(spec); spec.loader.exec_module(b)\n"
        "sys.path[:] = [p for p in sys.path if not p.endswith('benchmarks')]\n"
        "m = b.nequip_model(True)\n"
        "sc = sum(p.numel() for n, p in m.named_parameters() if '.sc.' in n)\n"
        "print(json.dumps([sum(p.numel() for p in m.parameters()), sc]))\n"
    )
    out = subprocess.run(
        [str(NEQUIP_PYTHON), "-c", code], capture_output=True, text=True, check=True
    )
    total, sc = json.loads(out.stdout.strip().splitlines()[-1])
    assert sc == 4 * 3_136  # a 16-wide embedding in place of 4 one-hot species
    # ours has 268 radial biases, 8 Bessel frequencies and 1 readout bias that nequip lacks
    assert total - sc == 12_981 - 3_136 - 268 - 8 - 1
