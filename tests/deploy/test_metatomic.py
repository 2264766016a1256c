"""``geocompose export --format metatomic``: a file that a process without geocompose
runs with metatomic-ase, matching our ASE calculator (float64 <= 1e-10 relative, float32
at round-off), in NVE MD too; the neighbour-list convention checked against our radius
graph; unknown species and bad input refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import units
from ase.build import molecule
from ase.io import read, write
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from ase.stress import full_3x3_to_voigt_6_stress
from deploy_cases import copper_molecule, rattled_copper, triclinic_copper

from geocompose.ase import Calculator
from geocompose.data.batch import Batch
from geocompose.deploy.inference import load_for_inference
from geocompose.types import fields as F

pytest.importorskip("metatomic.torch", reason="the deploy extra installs metatomic")
from metatensor.torch import Labels
from metatomic.torch import (
    ModelOutput,
    NeighborListOptions,
    System,
    load_atomistic_model,
)
from metatomic_ase import MetatomicCalculator
from vesin.metatomic import NeighborList

from geocompose.deploy.metatomic import (
    batch_inputs,
)

BLUEPRINTS = Path(__file__).parents[2] / "blueprints"

# Run in a fresh interpreter where importing geocompose fails: the file stands alone.
CHILD = r"""
import sys; sys.modules["geocompose"] = None
import json
import numpy as np
from ase import units
from ase.io import read
from ase.md.verlet import VelocityVerlet
from metatomic_ase import MetatomicCalculator

model, structures, md = sys.argv[1:4]
calculator = MetatomicCalculator(model)
results = []
for atoms in read(structures, index=":"):
    atoms.calc = calculator
    result = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces().tolist()}
    if atoms.pbc.all():
        result["stress"] = atoms.get_stress().tolist()
    results.append(result)
atoms = read(md)
atoms.calc = calculator
totals = []
dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
dynamics.attach(lambda: totals.append(atoms.get_total_energy()), interval=1)
dynamics.run(40)
print(json.dumps({"results": results, "totals": totals, "positions": atoms.positions.tolist()}))
"""


def _md_start():
    atoms = rattled_copper((2, 2, 2), seed=6)
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(0))
    return atoms


def _run_without_geocompose(model, tmp_path):
    write(tmp_path / "structures.extxyz", [triclinic_copper(), copper_molecule()])
    write(tmp_path / "md.extxyz", _md_start())
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(model),
            str(tmp_path / "structures.extxyz"),
            str(tmp_path / "md.extxyz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ours(checkpoint, atoms, dtype="float64"):
    atoms = atoms.copy()
    atoms.calc = Calculator(checkpoint, dtype=dtype)
    result = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if atoms.pbc.all():
        result["stress"] = atoms.get_stress()
    return result


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-5)])
def test_a_process_without_geocompose_matches_our_calculator(
    checkpoint, exported, tmp_path, dtype, rtol
):
    """float64 to 1e-10 relative; float32 at its round-off (1e-5 relative of each
    quantity's scale: float32 has 6e-8 and sums over edges lose a few digits)."""
    got = _run_without_geocompose(exported[dtype], tmp_path)
    # What the child read: extxyz rounds positions, so compare on the same numbers.
    structures = read(tmp_path / "structures.extxyz", index=":")
    for atoms, theirs in zip(structures, got["results"], strict=True):
        ours = _ours(checkpoint, atoms, dtype)
        assert set(theirs) == set(ours)  # stress for the periodic cell only
        assert theirs["energy"] == pytest.approx(ours["energy"], rel=rtol, abs=0)
        for name in ("forces", "stress"):
            if name in ours:
                scale = np.abs(ours[name]).max()
                np.testing.assert_allclose(theirs[name], ours[name], rtol=0, atol=rtol * scale)
    totals = np.array(got["totals"])
    drift = (totals[-1] - totals[0]) / 32
    excursion = np.abs(totals - totals[0]).max() / 32
    print(
        f"{dtype}: NVE 40 fs, 32 atoms at 600 K: drift {drift * 1e3:+.2e} meV/atom, "
        f"largest excursion {excursion * 1e3:.2e} meV/atom"
    )
    assert excursion < (1e-4 if dtype == "float64" else 1e-3)  # eV/atom
    if dtype == "float64":
        # The same trajectory as ASE's own MD with our calculator, atom by atom.
        atoms = read(tmp_path / "md.extxyz")
        assert np.abs(atoms.get_velocities()).max() > 0
        atoms.calc = Calculator(checkpoint, dtype="float64")
        VelocityVerlet(atoms, timestep=1.0 * units.fs).run(40)
        np.testing.assert_allclose(got["positions"], atoms.positions, rtol=0, atol=1e-9)


def test_per_atom_energies_and_selected_atoms(checkpoint, exported):
    """Per-atom energies (the sum readout's terms) equal our calculator's; the energy of
    selected atoms (domain decomposition, e.g. LAMMPS) is the sum of theirs."""

    atoms = triclinic_copper()
    calculator = MetatomicCalculator(str(exported["float64"]))
    capabilities = calculator.model().capabilities()
    assert capabilities.outputs["energy"].sample_kind == "atom"
    assert capabilities.interaction_range == pytest.approx(4.0)  # cutoff x 1 interaction
    atoms.calc = calculator
    theirs = atoms.get_potential_energies()
    ours = atoms.copy()
    ours.calc = Calculator(checkpoint, dtype="float64")
    np.testing.assert_allclose(theirs, ours.get_potential_energies(), rtol=1e-10, atol=0)
    chosen = Labels(["system", "atom"], torch.tensor([[0, 0], [0, 3], [0, 7]], dtype=torch.int32))
    for kind, expected in (("system", [theirs[[0, 3, 7]].sum()]), ("atom", theirs[[0, 3, 7]])):
        out = calculator.run_model(
            atoms, {"energy": ModelOutput(unit="eV", sample_kind=kind)}, selected_atoms=chosen
        )
        values = out["energy"].block().values.detach().numpy().reshape(-1)
        np.testing.assert_allclose(values, expected, rtol=1e-12)


def test_edge_cases_match_our_calculator(checkpoint, exported):
    """No edges at all (one atom, a dimer beyond the cutoff), one atom seeing its own
    images (a 1-atom fcc cell), a slab: sizes the trace never saw."""
    import ase
    from ase.build import bulk

    slab = bulk("Cu", "fcc", a=3.6, cubic=True)
    slab.pbc = [True, True, False]
    cases = [
        ase.Atoms("Cu", positions=[[0.0, 0.0, 0.0]]),
        ase.Atoms("Cu2", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 9.0]]),
        bulk("Cu", "fcc", a=3.6),
        slab,
    ]
    calculator = MetatomicCalculator(str(exported["float64"]))
    for atoms in cases:
        ours = _ours(checkpoint, atoms)
        atoms.calc = calculator
        assert atoms.get_potential_energy() == pytest.approx(ours["energy"], rel=1e-12)
        np.testing.assert_allclose(atoms.get_forces(), ours["forces"], rtol=0, atol=1e-14)


def test_torchsim_runs_the_file_batched(checkpoint, exported):
    """TorchSim's own metatomic model on two systems in one batch (the file's multi-system
    path): energy, forces and stress equal our calculator's to 1e-10 relative."""
    ts = pytest.importorskip("torch_sim")
    from torch_sim.models.metatomic import MetatomicModel  # warns: metatrain is optional

    systems = [rattled_copper((2, 1, 1)), triclinic_copper()]
    model = MetatomicModel(str(exported["float64"]), device="cpu")
    out = model(ts.io.atoms_to_state(systems, torch.device("cpu"), torch.float64))
    start = 0
    for index, atoms in enumerate(systems):
        ours = _ours(checkpoint, atoms)
        stop = start + len(atoms)
        assert float(out["energy"][index]) == pytest.approx(ours["energy"], rel=1e-10, abs=0)
        forces = out["forces"][start:stop].detach().numpy()
        np.testing.assert_allclose(
            forces, ours["forces"], rtol=0, atol=1e-10 * np.abs(ours["forces"]).max()
        )
        stress = full_3x3_to_voigt_6_stress(out["stress"][index].detach().numpy())
        np.testing.assert_allclose(
            stress, ours["stress"], rtol=0, atol=1e-10 * np.abs(ours["stress"]).max()
        )
        start = stop


def test_the_neighbour_list_maps_onto_our_radius_graph(checkpoint):
    """metatomic's (first_atom i, second_atom j, S) become our [sender j, receiver i]
    edge with shift S: the same edges, the same vectors, as our radius graph's."""

    potential = load_for_inference(checkpoint)
    cutoff = potential.model.trace.cutoff
    structures = [triclinic_copper(), copper_molecule()]
    options = NeighborListOptions(cutoff=cutoff, full_list=True, strict=True)
    systems = []
    for atoms in structures:
        cell = torch.tensor(atoms.cell.array if atoms.pbc.all() else np.zeros((3, 3)))
        system = System(
            torch.tensor(atoms.numbers, dtype=torch.int32),
            torch.tensor(atoms.positions),
            cell,
            torch.tensor(atoms.pbc),
        )
        NeighborList(options, length_unit="angstrom").add_neighbor_list([system])
        systems.append(system)
    positions, _, _, cells, _, edge_index, shifts, _ = batch_inputs(systems, options, cutoff)
    batch = Batch.from_ase(structures)
    ours = potential.model.graph.topology(batch)

    def edges(index, shift):
        return sorted(zip(index[0].tolist(), index[1].tolist(), map(tuple, shift.tolist())))

    assert edges(edge_index, shifts) == edges(ours[F.EDGE_INDEX], ours[F.EDGE_SHIFTS])
    senders, receivers = edge_index
    structure = batch.batch[receivers]
    vectors = (
        positions[senders]
        - positions[receivers]
        + torch.einsum("ei,eij->ej", shifts.double(), cells[structure])
    )
    assert float(vectors.norm(dim=1).max()) < cutoff
    # the per-system neighbour vectors metatomic computed, for the same pairs
    assert len(edge_index[0]) == sum(
        int((s.get_neighbor_list(options).values.reshape(-1, 3).norm(dim=1) < cutoff).sum())
        for s in systems
    )


def test_unknown_species_is_refused_in_one_line(exported, checkpoint):

    water = molecule("H2O")
    water.calc = MetatomicCalculator(str(exported["float64"]))
    # metatomic checks the declared atomic types before the model runs.
    with pytest.raises(ValueError) as caught:
        water.get_potential_energy()
    assert str(caught.value) == (
        "this model does not support the atomic type '8' which is present in the input systems"
    )
    # The model itself refuses with the message of every other engine.
    model = load_atomistic_model(str(exported["float64"]))
    options = NeighborListOptions(cutoff=4.0, full_list=True, strict=True)
    system = System(
        torch.tensor(water.numbers, dtype=torch.int32),
        torch.tensor(water.positions),
        torch.zeros(3, 3, dtype=torch.float64),
        torch.zeros(3, dtype=torch.bool),
    )
    NeighborList(options, length_unit="angstrom").add_neighbor_list([system])
    with pytest.raises(Exception) as caught:
        model.module([system], {"energy": ModelOutput(unit="eV")}, None)
    last = str(caught.value).strip().splitlines()[-1]
    assert last.endswith("atom 0 is O, which model 'deploy_cu' does not know (its species: Cu)")
