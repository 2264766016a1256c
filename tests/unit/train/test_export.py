"""Export: the exported program matches the original potential to float tolerance, for
any number of structures, and runs without geocompose."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from train_cases import SAMPLE, tiny_painn, tiny_schnet

import geocompose
from geocompose.train import Potential
from geocompose.train.export import ExportedPotential, ExportError, export_potential
from geocompose.types import fields as F

ROOT = Path(__file__).parents[3]


def _potential(blueprint, dtype=torch.float64):
    model = geocompose.compile(blueprint, dtype=dtype, seed=2)
    return Potential(
        model, torch.linspace(-3, 1, len(model.species), dtype=dtype), scale=0.8
    ).eval()


def _inputs(potential, batch):
    topology = potential.model.graph.topology(batch)
    return (
        batch.positions,
        batch.atomic_numbers,
        batch.batch,
        batch.cell,
        batch.pbc,
        topology[F.EDGE_INDEX],
        topology[F.EDGE_SHIFTS],
    )


@pytest.mark.parametrize(
    "blueprint, dtype, tolerance",
    [
        (tiny_schnet(), torch.float64, 1e-10),
        (tiny_schnet(), torch.float32, 1e-4),
        (tiny_painn("direct_forces"), torch.float64, 1e-10),
    ],
    ids=["schnet-float64", "schnet-float32", "painn-direct"],
)
def test_exported_outputs_match_the_original(sample, tmp_path, blueprint, dtype, tolerance):
    potential = _potential(blueprint, dtype)
    path = export_potential(
        potential, tmp_path / "m.pt2", sample.collate([0, 1, 2], dtype), graph=blueprint["graph"]
    )
    exported = ExportedPotential(path)
    assert exported.metadata["conservative"] == potential.conservative
    assert exported.metadata["graph"]["cutoff"] == 4.0
    for indices in ([7], [3, 4, 5, 6, 8]):  # other sizes than the traced example
        batch = sample.collate(indices, dtype)
        expected = potential(batch, stress=True)
        got = exported(*_inputs(potential, batch), stress=True)
        for name in ("energy", "forces", "stress"):
            torch.testing.assert_close(got[name], expected[name], rtol=tolerance, atol=tolerance)


def test_extra_topology_is_refused(sample, tmp_path):
    blueprint = tiny_schnet()
    blueprint["graph"]["long_range_cutoff"] = 6.0
    with pytest.raises(ExportError, match="extra graph topology"):
        export_potential(
            _potential(blueprint), tmp_path / "m.pt2", sample.collate([0, 1], torch.float64)
        )
    with pytest.raises(ExportError, match="at least 2 structures"):
        export_potential(
            _potential(tiny_schnet()), tmp_path / "m.pt2", sample.collate([0], torch.float64)
        )


def test_the_exported_file_runs_without_geocompose(sample, tmp_path):
    potential = _potential(tiny_schnet())
    path = export_potential(
        potential, tmp_path / "m.pt2", sample.collate([0, 1], torch.float64), graph={"cutoff": 4.0}
    )
    # geocompose cannot be imported in the child: the file must stand on its own.
    code = (
        "import sys; sys.modules['geocompose'] = None; "
        f"sys.argv = ['run_exported', {str(path)!r}, {str(SAMPLE)!r}, ':3']; "
        f"exec(open({str(ROOT / 'examples' / 'run_exported.py')!r}).read())"
    )
    lines = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    expected = [potential(sample.collate([k], torch.float64)) for k in range(3)]
    for line, ref in zip(lines, expected):
        _, energy, fmax = line.split()
        assert float(energy) == pytest.approx(float(ref["energy"][0]), abs=1e-9)
        assert float(fmax) == pytest.approx(float(ref["forces"].abs().max()), abs=1e-7)
    assert np.isfinite([float(x.split()[1]) for x in lines if x]).all()
