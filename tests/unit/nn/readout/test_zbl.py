"""The ZBL repulsion knob: the textbook pair energy, smooth to zero at its pair cutoff,
refused when the graph would miss pairs, verified, and unscaled inside a Potential."""

from pathlib import Path

import ase
import ase.data
import pytest
import torch

import geocompose
from geocompose.compiler import compile as compile_blueprint
from geocompose.errors import GeocomposeError
from geocompose.nn.readout.zbl import COULOMB, zbl_pair_energy
from geocompose.train.potential import Potential
from geocompose.verification import verify


def blueprint(species=("H", "Cu"), cutoff=5.0, **zbl) -> dict:
    return {
        "name": "schnet_zbl",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": {"type": "radius", "cutoff": cutoff},
        "embedding": {
            "species": list(species),
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "gaussian", "num": 8},
            "envelope": {"type": "cosine"},
        },
        "interactions": [{"type": "schnet", "filters": 8, "repeat": 1}],
        "readout": {
            "network_energy": {"type": "sum", "hidden": [8]},
            "energy": {"type": "zbl", "add_to": "network_energy", **zbl},
            "forces": {"type": "gradient", "of": "energy"},
        },
    }


def dimer(symbol: str, r: float) -> geocompose.Batch:
    atoms = ase.Atoms(f"{symbol}2", positions=[[0, 0, 0], [r, 0, 0]])
    return geocompose.Batch.from_ase([atoms], dtype=torch.float64)


def repulsion(model, batch):
    out = model(batch)
    return (out["energy"] - out["network_energy"]).item(), out["forces"]


def test_zbl_at_short_range_is_the_screened_coulomb_energy():
    # Far inside the pair cutoff the envelope is ~1: the energy is ZBL's, pair counted once.
    model = compile_blueprint(blueprint(), dtype=torch.float64).eval()
    r = 0.2
    energy, _ = repulsion(model, dimer("Cu", r))
    z = torch.tensor(29.0, dtype=torch.float64)
    cutoff = 2 * ase.data.covalent_radii[29]
    x = r / cutoff
    envelope = 1 - 28 * x**6 + 48 * x**7 - 21 * x**8  # p = 6
    expected = float(zbl_pair_energy(torch.tensor(r, dtype=torch.float64), z, z)) * envelope
    assert energy == pytest.approx(expected, rel=1e-12)
    # Screening: below the bare Coulomb energy, and approaching it as r -> 0.
    assert energy < COULOMB * 29 * 29 / r
    tiny = float(zbl_pair_energy(torch.tensor(1e-4, dtype=torch.float64), z, z))
    assert tiny * 1e-4 / (COULOMB * 29 * 29) == pytest.approx(1.0, rel=1e-2)


def test_zbl_goes_smoothly_to_zero_at_the_pair_cutoff():
    model = compile_blueprint(blueprint(), dtype=torch.float64).eval()
    cutoff = 2 * ase.data.covalent_radii[1]  # H-H: 0.62 Å

    def energy(gap):  # ZBL energy of H2 at ``gap`` inside the pair cutoff
        return repulsion(model, dimer("H", cutoff - gap))[0]

    def slope(gap, h=1e-7):
        return (energy(gap - h) - energy(gap + h)) / (2 * h)  # dE/dr

    assert energy(-1e-3) == 0.0 and energy(0.3) > 1.0  # eV: none outside, strong inside
    # p = 6 envelope: E ~ gap^3 and dE/dr ~ gap^2 at the cutoff, so both reach zero
    # continuously (a step would give a constant energy ratio, a kink a constant slope).
    assert energy(2e-3) / energy(1e-3) == pytest.approx(8.0, rel=0.02)
    assert slope(1e-3) / slope(1e-4) == pytest.approx(100.0, rel=0.02)
    assert abs(slope(1e-4)) < 1e-4  # eV/Å


def test_a_blueprint_with_zbl_verifies():
    report = verify(blueprint(), samples=1, seed=3)
    assert report.passed, report.text()


def test_zbl_is_added_in_ev_whatever_the_potential_scale():
    model = compile_blueprint(blueprint(), dtype=torch.float64).eval()
    batch = dimer("Cu", 1.0)
    zbl, _ = repulsion(model, batch)
    energies = []
    for scale in (1.0, 0.25):
        potential = Potential(model, scale=scale).eval()
        net = model(batch)["network_energy"].item()
        energies.append(potential(batch)["energy"].item() - scale * net)
    assert energies == pytest.approx([zbl, zbl], rel=1e-12)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cutoff": 2.0}, "beyond the graph's cutoff"),  # Cu-Cu pairs reach 2.64 Å
        ({"add_to": "energy"}, "its own output"),
        ({"add_to": "dipole"}, "dipole"),
    ],
)
def test_zbl_refuses_what_does_not_fit(changes, message):
    cutoff = changes.pop("cutoff", 5.0)
    with pytest.raises(GeocomposeError, match=message):
        compile_blueprint(blueprint(cutoff=cutoff, **changes))


def test_the_example_zbl_blueprint_differs_from_painn_small_by_the_term_alone():
    # benchmarks/physical_sanity.py compares the two (docs/training.md): everything but
    # the energy term must be the same model.
    import yaml

    folder = Path(__file__).parents[4] / "examples" / "blueprints"
    plain = yaml.safe_load((folder / "painn_small.yaml").read_text())
    with_zbl = yaml.safe_load((folder / "painn_small_zbl.yaml").read_text())
    readout = with_zbl.pop("readout")
    assert readout == {
        "network_energy": plain.pop("readout")["energy"],
        "energy": {"type": "zbl", "add_to": "network_energy"},
        "forces": {"type": "gradient", "of": "energy"},
    }
    for key in ("name", "description"):
        del with_zbl[key], plain[key]
    assert with_zbl == plain
    model = compile_blueprint(
        with_zbl | {"name": "painn_small_zbl", "readout": readout}, dtype=torch.float64
    ).eval()
    energy, _ = repulsion(model, dimer("Cu", 1.0))
    z = torch.tensor(29.0, dtype=torch.float64)
    assert energy > 0.9 * float(zbl_pair_energy(torch.tensor(1.0, dtype=torch.float64), z, z))
