"""i-PI as server, our model as its socket client: a short PIMD NVT run, really started
(unix socket, bounded time, nothing left running), whose energies are our calculator's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from ase.io import write
from deploy_cases import rattled_copper

from geocompose.ase import Calculator

pytest.importorskip("ipi", reason="the deploy extra installs ipi")
I_PI = shutil.which("i-pi") or str(Path(sys.executable).parent / "i-pi")

STEPS = 10
INPUT = """\
<simulation verbosity='low' safe_stride='1000'>
  <output prefix='sim'>
    <properties stride='1' filename='out' flush='1'>
      [ step, temperature{{kelvin}}, potential{{electronvolt}}, pressure_md{{bar}} ]
    </properties>
  </output>
  <total_steps>{steps}</total_steps>
  <prng><seed>31415</seed></prng>
  <ffsocket name='geocompose' mode='unix'>
    <address>{address}</address>
  </ffsocket>
  <system>
    <initialize nbeads='2'>
      <file mode='ase'> init.extxyz </file>
      <velocities mode='thermal' units='kelvin'> 300 </velocities>
    </initialize>
    <forces><force forcefield='geocompose'/></forces>
    <motion mode='dynamics'>
      <dynamics mode='nvt'>
        <timestep units='femtosecond'> 1.0 </timestep>
        <thermostat mode='pile_l'><tau units='femtosecond'> 50 </tau></thermostat>
      </dynamics>
    </motion>
    <ensemble><temperature units='kelvin'> 300 </temperature></ensemble>
  </system>
</simulation>
"""


def _properties(path: Path) -> np.ndarray:
    return np.loadtxt(path, comments="#", ndmin=2)


@pytest.mark.skipif(not os.path.exists(I_PI), reason="the i-pi script of the ipi package")
def test_pimd_nvt_with_our_client_uses_our_energies(checkpoint, tmp_path):
    from geocompose.deploy import load_for_inference
    from geocompose.deploy.ipi import run_client

    atoms = rattled_copper()
    write(tmp_path / "init.extxyz", atoms, format="extxyz")
    address = f"geocompose-{uuid.uuid4().hex[:12]}"  # i-PI listens on /tmp/ipi_<address>
    (tmp_path / "input.xml").write_text(INPUT.format(steps=STEPS, address=address))
    socket = Path(f"/tmp/ipi_{address}")
    server = subprocess.Popen([sys.executable, I_PI, "input.xml"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not socket.exists():
            assert server.poll() is None, server.stdout.read()[-2000:]
            assert time.monotonic() < deadline, "i-PI did not open its socket in 120 s"
            time.sleep(0.2)
        served = run_client(load_for_inference(checkpoint), atoms, unixsocket=address,
                            timeout=120)
        output, _ = server.communicate(timeout=120)
        assert server.returncode == 0, output[-2000:]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
        socket.unlink(missing_ok=True)
    # Two beads, one evaluation each per step, plus the initial one.
    assert served == 2 * (STEPS + 1)
    table = _properties(tmp_path / "sim.out")
    assert table[:, 0].tolist() == list(range(STEPS + 1))
    atoms.calc = Calculator(checkpoint)
    # Step 0: both beads sit on the initial structure, so i-PI's (bead-averaged)
    # potential is our energy; i-PI prints 8 significant digits.
    assert table[0, 2] == pytest.approx(atoms.get_potential_energy(), rel=1e-7)
    assert np.isfinite(table).all() and np.ptp(table[:, 2]) > 0


def test_the_client_refuses_unknown_species_before_connecting(checkpoint, tmp_path, capsys):
    from ase.build import molecule

    from geocompose.deploy.ipi import main

    write(tmp_path / "water.xyz", molecule("H2O"))
    address = f"geocompose-{uuid.uuid4().hex[:12]}"  # nothing listens there
    code = main(["--model", str(checkpoint), "--structure", str(tmp_path / "water.xyz"),
                 "--unix", address, "--timeout", "5"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "atom 0 is O, which model 'deploy_cu' does not know (its species: Cu)"
    )
