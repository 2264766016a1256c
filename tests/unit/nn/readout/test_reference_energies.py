"""The reference_energies (E0s) knob: given or fitted per-species energies, refused when
incomplete, one shift in the trained potential, verified chained with ZBL."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

import geocompose
from geocompose.compiler import compile as compile_blueprint
from geocompose.data.dataset import Dataset
from geocompose.errors import GeocomposeError
from geocompose.nn.readout.reference_energies import ReferenceEnergies
from geocompose.train import TrainConfig, Trainer
from geocompose.train.reference import fit_reference
from geocompose.verification import verify

SAMPLE = Path(__file__).parents[4] / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"
QUIET = {"progress": False, "echo": lambda _: None}


def blueprint(values="fit", species=("H", "O", "Cu"), zbl=False) -> dict:
    e0 = {"type": "reference_energies", "add_to": "network_energy", "values": values}
    readout = {"network_energy": {"type": "sum", "hidden": [8]}}
    if zbl:  # network -> + E0s -> + ZBL
        readout |= {"with_e0": e0, "energy": {"type": "zbl", "add_to": "with_e0"}}
    else:
        readout |= {"energy": e0}
    readout["forces"] = {"type": "gradient", "of": "energy"}
    return {
        "name": "schnet_e0",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": {"type": "radius", "cutoff": 5.0},
        "embedding": {
            "species": list(species),
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "gaussian", "num": 8},
            "envelope": {"type": "cosine"},
        },
        "interactions": [{"type": "schnet", "filters": 8, "repeat": 1}],
        "readout": readout,
    }


def test_given_values_add_per_species_energies_exactly():
    values = {"H": -13.6, "O": -432.1, "Cu": -1000.5}
    model = compile_blueprint(blueprint(values), dtype=torch.float64).eval()
    batch = geocompose.Batch.from_ase([molecule("H2O"), bulk("Cu") * (2, 1, 1)], dtype=torch.float64)
    out = model(batch)
    added = (out["energy"] - out["network_energy"]).reshape(-1).tolist()
    assert added == pytest.approx([2 * -13.6 - 432.1, 2 * -1000.5], rel=1e-14)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"H": 1.0, "O": 2.0}, "no value for Cu"),
        ({"H": 1.0, "O": 2.0, "Cu": 3.0, "Au": 4.0}, "Au not among the species"),
        ({"H": 1.0, "O": math.nan, "Cu": 3.0}, "non-finite value for O"),
    ],
)
def test_incomplete_or_bad_values_are_refused(values, message):
    with pytest.raises(GeocomposeError, match=message):
        compile_blueprint(blueprint(values))


def test_trainer_fits_or_keeps_the_blueprint_references(tmp_path):
    data = Dataset.from_file(SAMPLE, index=":30")
    config = TrainConfig(epochs=1, atoms_per_batch=96, valid_fraction=0.2)
    fit = Trainer(blueprint(species=["Cu"]), data, config, tmp_path / "fit", **QUIET)
    term = next(m for m in fit.potential.modules() if isinstance(m, ReferenceEnergies))
    expected = fit_reference(data, fit.splits.train, ["Cu"])
    assert term.e0.double().numpy() == pytest.approx(expected, rel=1e-6)
    assert float(fit.potential.reference.abs().max()) == 0.0  # one shift, in the term
    given = Trainer(blueprint({"Cu": -3.5}, species=["Cu"]), data, config, tmp_path / "given", **QUIET)
    term = next(m for m in given.potential.modules() if isinstance(m, ReferenceEnergies))
    assert term.e0.tolist() == [-3.5] and float(given.potential.reference.abs().max()) == 0.0
    batch = given.valid_batches[0]
    potential = given.potential.eval()
    net = potential.model(batch)["network_energy"].reshape(-1)
    energy = potential(batch)["energy"]
    expected = potential.scale * net + (-3.5) * batch.counts().to(net.dtype)
    assert torch.allclose(energy, expected, rtol=1e-6)
    np.testing.assert_array_equal(given.potential.reference.numpy(), [0.0])


def test_e0s_chained_with_zbl_verify():
    report = verify(blueprint({"H": -13.6, "O": -432.1, "Cu": -1000.5}, zbl=True), samples=1, seed=5)
    assert report.passed, report.text()
