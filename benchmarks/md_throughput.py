"""MD throughput of one model through every engine: ASE, TorchSim, LAMMPS, metatomic.

The model is the shipped SchNet (``blueprints/schnet.yaml``: 6 interactions, 128
features, 5 Å cutoff) with its species cut to Cu, compiled with a fixed seed and saved
as a checkpoint (throughput does not depend on the weights), then loaded by each engine
through its documented entry point. The systems are fcc Cu supercells of 108, 864 and
4,000 atoms (a = 3.61 Å, rattled, 300 K Maxwell-Boltzmann velocities). Each engine runs
NVE velocity Verlet at 1 fs: a warm-up of ``--warmup`` steps, then ``--steps`` timed
steps. Reported: steps/s (MD steps of the whole batch per second) and atom-steps/s
(atoms x steps per second, summed over a TorchSim batch).

- ASE: ``VelocityVerlet`` with :class:`geocompose.ase.Calculator`.
- TorchSim: ``ts.nve`` on 1, 8 and 64 copies of the system in one ``SimState``.
- LAMMPS: ``geocompose.deploy.lammps.run_lammps`` (``fix nve``), 1 rank in this process
  and 2 ranks through ``mpiexec``.
- metatomic: the checkpoint exported as ``geocompose export --format metatomic`` does
  (once, untimed), run by ``VelocityVerlet`` with metatomic-ase's ``MetatomicCalculator``
  at its defaults (vesin neighbour list with a 2 Å Verlet skin).

Batches above ``--max-atoms`` atoms are skipped (memory of the 2-core, 24 GiB machine).
The load average is printed with the results: on a shared machine they are lower
bounds. Run::

    python benchmarks/md_throughput.py --json md_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import harness  # the one timing harness, beside this file

SIZES = {108: 3, 864: 6, 4000: 10}  # atoms -> cubic repeats of the 4-atom fcc cell
LATTICE = 3.61


def write_checkpoint(path: Path, dtype: str) -> Path:
    """The benchmark model as a checkpoint every engine loads."""
    import geocompose
    from geocompose.train import Potential, save_checkpoint

    blueprint = geocompose.load(ROOT / "blueprints" / "schnet.yaml").blueprint
    blueprint = blueprint.model_dump(mode="json")
    blueprint["embedding"]["species"] = ["Cu"]
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    model = geocompose.compile(blueprint, dtype=torch_dtype, seed=0)
    potential = Potential(model, torch.tensor([-3.5], dtype=torch_dtype), scale=0.3)
    state = {
        "blueprint": blueprint,
        "species": ["Cu"],
        "dtype": dtype,
        "weights": potential.state_dict(),
        "ema": None,
    }
    return save_checkpoint(state, path)


def copper(atoms_count: int, seed: int = 0):
    from ase.build import bulk
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    n = SIZES[atoms_count]
    atoms = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat((n, n, n))
    atoms.rattle(0.02, seed=seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(seed))
    return atoms


def time_ase(checkpoint: Path, size: int, steps: int, warmup: int) -> float:
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from geocompose.ase import Calculator

    atoms = copper(size)
    atoms.calc = Calculator(checkpoint)
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dyn.run(warmup)
    start = time.perf_counter()
    dyn.run(steps)
    return time.perf_counter() - start


def time_torchsim(checkpoint: Path, size: int, systems: int, steps: int, warmup: int) -> float:
    import torch_sim as ts

    from geocompose.torchsim import Model

    dtype = torch.load(checkpoint, weights_only=True)["dtype"]
    model = Model(checkpoint, dtype=dtype, compute_stress=False)
    state = ts.io.atoms_to_state(
        [copper(size, seed=s) for s in range(systems)], model.device, model.dtype
    )
    kt = torch.tensor(300 * ts.units.MetalUnits.temperature, dtype=model.dtype)
    dt = torch.tensor(0.001 * ts.units.MetalUnits.time, dtype=model.dtype)
    init_fn, update_fn = ts.nve(model, dt=dt, kT=kt, seed=0)
    state = init_fn(state)
    for _ in range(warmup):
        state = update_fn(state)
    start = time.perf_counter()
    for _ in range(steps):
        state = update_fn(state)
    return time.perf_counter() - start


LAMMPS_INPUT = """\
units metal
atom_style atomic
lattice fcc {lattice}
region box block 0 {n} 0 {n} 0 {n}
create_box 1 box
create_atoms 1 box
mass 1 63.546
displace_atoms all random 0.02 0.02 0.02 12345
velocity all create 300 4928459 mom yes
timestep 0.001
fix nve all nve
thermo 1000
run {warmup}
"""


def time_lammps(checkpoint: Path, size: int, steps: int, warmup: int) -> float:
    """One rank, or as many as ``mpiexec`` started this process with."""
    from mpi4py import MPI

    from geocompose.deploy import load_for_inference
    from geocompose.deploy.lammps import run_lammps

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.lmp"
        path.write_text(LAMMPS_INPUT.format(lattice=LATTICE, n=SIZES[size], warmup=warmup))
        lmp, _ = run_lammps(
            path, load_for_inference(checkpoint), cmdargs=["-log", "none", "-screen", "none"]
        )
        MPI.COMM_WORLD.Barrier()
        start = time.perf_counter()
        lmp.command(f"run {steps}")
        MPI.COMM_WORLD.Barrier()
        elapsed = time.perf_counter() - start
        lmp.close()
    return elapsed


def export_metatomic(checkpoint: Path, folder: Path) -> Path:
    """The checkpoint as a metatomic model file (what ``geocompose export --format
    metatomic`` writes), traced on two small Cu structures."""
    from geocompose.data.batch import Batch
    from geocompose.deploy import load_for_inference
    from geocompose.deploy.metatomic import save_metatomic

    potential = load_for_inference(checkpoint)
    example = Batch.from_ase([copper(108, seed=1), copper(108, seed=2)[:50]])
    return save_metatomic(potential, folder / "schnet_cu_metatomic.pt", example)


def time_metatomic(model: Path, size: int, steps: int, warmup: int) -> float:
    from ase import units
    from ase.md.verlet import VelocityVerlet
    from metatomic_ase import MetatomicCalculator

    atoms = copper(size)
    atoms.calc = MetatomicCalculator(str(model))
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dyn.run(warmup)
    start = time.perf_counter()
    dyn.run(steps)
    return time.perf_counter() - start


def _lammps_ranks(checkpoint: Path, size: int, steps: int, warmup: int, ranks: int) -> float:
    command = [
        "mpiexec",
        "-n",
        str(ranks),
        sys.executable,
        __file__,
        "--lammps-worker",
        str(checkpoint),
        str(size),
        str(steps),
        str(warmup),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def markdown(result: dict) -> str:
    """The rows as the table of docs/deployment.md, with the load average beside it."""
    lines = [
        "| engine | atoms per system | systems | steps/s | atom-steps/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in result["rows"]:
        if "skipped" in row:
            figures = f"not run ({row['skipped']}) | "
        else:
            figures = f"{row['steps_per_s']:.3g} | {row['atom_steps_per_s']:,.0f}"
        lines.append(f"| {row['engine']} | {row['atoms']:,} | {row['systems']} | {figures} |")
    load = ", ".join(f"{x:.1f}" for x in result["load_average"])
    lines.append("")
    lines.append(
        f"{result['model']}; {result['steps']} timed steps after {result['warmup']} warm-up; "
        f"{result['threads']} torch thread(s) per process; load average {load} on "
        f"{result['cores']} cores at the end (above ~1 per core, other jobs ran beside it)."
    )
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), choices=SIZES)
    parser.add_argument("--engines", nargs="+", default=["ase", "torchsim", "lammps", "metatomic"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    # 8 x 4,000 atoms (32,000) of the shipped SchNet took > 17 GB in float32: OOM at 24 GiB.
    parser.add_argument("--max-atoms", type=int, default=20_000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--lammps-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = harness.set_threads(args.threads)
    if args.lammps_worker:
        checkpoint, size, steps, warmup = args.lammps_worker
        elapsed = time_lammps(Path(checkpoint), int(size), int(steps), int(warmup))
        from mpi4py import MPI

        if MPI.COMM_WORLD.rank == 0:
            print(elapsed)
        return {}

    print(
        harness.header(
            "MD throughput", ["ase", "torch-sim-atomistic", "lammps", "metatomic-torch"], threads
        )
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = write_checkpoint(Path(folder) / "schnet_cu.pt", args.dtype)
        if "metatomic" in args.engines:
            exported = export_metatomic(checkpoint, Path(folder))
        for size in args.sizes:
            runs = []
            if "ase" in args.engines:
                runs.append(
                    ("ASE", 1, lambda s=size: time_ase(checkpoint, s, args.steps, args.warmup))
                )
            if "torchsim" in args.engines:
                for b in args.batches:
                    runs.append(
                        (
                            f"TorchSim x{b}",
                            b,
                            lambda s=size, b=b: time_torchsim(
                                checkpoint, s, b, args.steps, args.warmup
                            ),
                        )
                    )
            if "lammps" in args.engines:
                for r in args.ranks:
                    runs.append(
                        (
                            f"LAMMPS {r} rank{'s' if r > 1 else ''}",
                            1,
                            lambda s=size, r=r: _lammps_ranks(
                                checkpoint, s, args.steps, args.warmup, r
                            ),
                        )
                    )
            if "metatomic" in args.engines:
                runs.append(
                    (
                        "metatomic-ase",
                        1,
                        lambda s=size: time_metatomic(exported, s, args.steps, args.warmup),
                    )
                )
            for engine, systems, run in runs:
                atoms = size * systems
                row = {"engine": engine, "atoms": size, "systems": systems}
                if atoms > args.max_atoms:
                    row["skipped"] = f"{atoms} atoms > --max-atoms {args.max_atoms}"
                else:
                    elapsed = run()
                    row["steps_per_s"] = args.steps / elapsed
                    row["atom_steps_per_s"] = args.steps * atoms / elapsed
                print(json.dumps(row), flush=True)
                rows.append(row)
    result = {
        "model": "blueprints/schnet.yaml (species Cu), " + args.dtype,
        "steps": args.steps,
        "warmup": args.warmup,
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "cpu": harness.cpu_model(),
        "cores": os.cpu_count(),
        "rows": rows,
    }
    print(harness.footer())
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
