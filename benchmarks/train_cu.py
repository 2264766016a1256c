"""Training benchmark on EMT copper: force MAE and training throughput for a fixed budget.

The shipped SchNet, PaiNN and MACE blueprints are trained with ``geocompose``'s trainer
on one seeded split of the EMT Cu set (``scripts/generate_emt_cu.py``: 32-atom fcc cells
from Langevin MD at 300-1200 K and three lattice strains), for the same number of
epochs with the same hyperparameters, then scored on the held-out test split. MACE is
also trained with ``mace-torch`` on the same files with the same budget and the
hyperparameters of ``blueprints/mace.yaml`` mapped onto its ``run_train`` arguments.

mace-torch pins e3nn 0.4.4 and geocompose uses e3nn 0.6, so they cannot share one
Python environment: this script runs *itself* under the mace venv (``--engine
mace-torch``, default ``/work/venvs/mace/bin/python``; ``python -m venv
/work/venvs/mace && pip install torch==2.13.0 mace-torch``) on the split files it wrote.

Both engines are measured the same way: the test errors come from each engine's ASE
calculator on the same structures through the same ``errors`` function below, and the
throughput is training structures per second of the training steps alone (forward,
loss, backward, optimiser step, EMA; validation and data preparation excluded), timed
by wrapping mace-torch's ``train_one_epoch`` and from geocompose's per-epoch
``time_s``.

Run::

    python scripts/generate_emt_cu.py --out /work/data/cu_emt.extxyz
    python benchmarks/train_cu.py /work/data/cu_emt.extxyz --epochs 10 --threads 1
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = "/work/venvs/mace/bin/python"
MODELS = ("schnet", "painn", "mace")

# One budget and one set of hyperparameters for every model and both engines.
HYPER = {
    "batch_structures": 8,  # 8 x 32 atoms = geocompose's atoms_per_batch 256
    "lr": 1e-3,
    "ema_decay": 0.99,
    "clip": 10.0,
    "energy_weight": 1.0,  # per-atom energy MSE
    "forces_weight": 10.0,  # per-component force MSE
}


def write_split(data: Path, work: Path, n_train: int, n_valid: int, n_test: int, seed: int):
    """Seeded train/valid/test files drawn from ``data`` (one split for every run)."""
    from ase.io import read, write

    frames = read(data, index=":")
    if n_train + n_valid + n_test > len(frames):
        raise SystemExit(
            f"{data}: {len(frames)} structures, asked for {n_train + n_valid + n_test}"
        )
    order = np.random.default_rng(seed).permutation(len(frames))
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    paths, start = {}, 0
    for name, size in sizes.items():
        chosen = [frames[i] for i in order[start : start + size]]
        for atoms in chosen:
            reference_keys(atoms)
        paths[name] = work / f"{name}.extxyz"
        write(paths[name], chosen, format="extxyz")
        start += size
    return paths


def reference_keys(atoms) -> None:
    """The targets again under the keys mace-torch reads (``REF_energy``, ``REF_forces``,
    and ``REF_stress``, Voigt eV/Å^3, where a 3D cell carries a stress)."""
    atoms.info["REF_energy"] = atoms.get_potential_energy()
    atoms.arrays["REF_forces"] = atoms.get_forces()
    if atoms.pbc.all() and "stress" in atoms.calc.results:
        atoms.info["REF_stress"] = atoms.get_stress()


def errors(calc, path: Path, score_stress: bool = True) -> dict:
    """Energy (meV/atom) and force (meV/Å) MAE and RMSE of ``calc`` on the file's
    structures, and with ``score_stress`` the stress MAE where the file has one (a model
    trained without a stress loss is not scored on it)."""
    from ase.io import read

    de, df, ds = [], [], []
    for atoms in read(path, index=":"):
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        # Stress where the reference has one (3D-periodic cells): every 3x3 component,
        # as both trainers' stress losses and geocompose's metrics count them.
        stress = None
        if score_stress and atoms.pbc.all() and "stress" in atoms.calc.results:
            stress = atoms.get_stress(voigt=False)
        atoms.calc = calc
        de.append((atoms.get_potential_energy() - energy) / len(atoms))
        df.append((atoms.get_forces() - forces).ravel())
        if stress is not None:
            ds.append((atoms.get_stress(voigt=False) - stress).ravel())
    de, df = np.asarray(de), np.concatenate(df)
    result = {
        "energy_mae_mev_atom": 1000 * float(np.abs(de).mean()),
        "energy_rmse_mev_atom": 1000 * float(np.sqrt((de**2).mean())),
        "forces_mae_mev_A": 1000 * float(np.abs(df).mean()),
        "forces_rmse_mev_A": 1000 * float(np.sqrt((df**2).mean())),
    }
    if ds:  # meV/Å^3 (1 meV/Å^3 = 0.16 GPa)
        ds = np.concatenate(ds)
        result["stress_mae_mev_A3"] = 1000 * float(np.abs(ds).mean())
        result["stress_rmse_mev_A3"] = 1000 * float(np.sqrt((ds**2).mean()))
    return result


def copper_blueprint(model: str) -> dict:
    """The shipped blueprint with its species list cut to the data's one element.

    The shipped blueprints embed five species (H, C, N, O, Cu); mace-torch takes its
    element table from the training data, so both engines get one species here, which
    keeps the two MACE models' species-dependent weights the same size. For MACE the
    node embedding is mace-torch's too (below); nothing else changes.
    """
    import yaml

    blueprint = yaml.safe_load((ROOT / "blueprints" / f"{model}.yaml").read_text())
    blueprint["embedding"]["species"] = ["Cu"]
    if model == "mace":
        # mace-torch embeds the one-hot species into the hidden scalars (a learned vector
        # per element) before its first layer; mace.yaml passes the one-hot (1 channel for
        # one species) straight in, which would make its first layer 32 times narrower.
        blueprint["embedding"]["node"] = {"type": "learned", "features": 32}
    return blueprint


def run_geocompose(
    model: str,
    split: dict,
    epochs: int,
    seed: int,
    out: Path,
    hyper: dict = HYPER,
    blueprint: dict | None = None,
) -> dict:
    """Train ``blueprint`` (default: ``copper_blueprint(model)``) into ``out / model``
    with ``hyper``, batches of ``hyper["batch_structures"]`` of the largest structure."""
    import torch

    from geocompose.ase import Calculator
    from geocompose.data.dataset import Dataset, Splits
    from geocompose.train import TrainConfig, Trainer

    # One data set holding train, then valid (the trainer's splits index into it).
    train = Dataset.from_file(split["train"])
    valid = Dataset.from_file(split["valid"])
    data = Dataset([*(train[i] for i in range(len(train))), *(valid[i] for i in range(len(valid)))])
    splits = Splits(
        train=list(range(len(train))), valid=list(range(len(train), len(data))), test=[]
    )
    largest = max(len(train[i].numbers) for i in range(len(train)))
    config = TrainConfig(
        epochs=epochs,
        atoms_per_batch=largest * hyper["batch_structures"],
        lr=hyper["lr"],
        schedule="constant",
        ema_decay=hyper["ema_decay"],
        clip=hyper["clip"],
        energy_weight=hyper["energy_weight"],
        forces_weight=hyper["forces_weight"],
        stress_weight=hyper.get("stress_weight"),  # None: on for periodic data with stress
        patience=0,
        seed=seed,
        dtype="float32",
    )
    result = Trainer(
        blueprint or copper_blueprint(model),
        data,
        config,
        out=out / model,
        splits=splits,
        progress=False,
        echo=lambda _: None,
    ).fit()
    seen = sum(row["structures_per_s"] * row["time_s"] for row in result.history)
    train_time = sum(row["time_s"] for row in result.history)
    calc = Calculator(result.best)
    weights = sum(p.numel() for p in calc.potential.model.parameters())
    return {
        "engine": "geocompose",
        "weights": weights,
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "train_time_s": train_time,
        "structures_per_s": seen / train_time,
        **errors(calc, split["test"], score_stress=hyper.get("stress_weight") != 0.0),
        "torch_threads": torch.get_num_threads(),
    }


def mace_arguments(
    split: dict,
    epochs: int,
    seed: int,
    work: Path,
    hyper: dict = HYPER,
    name: str = "mace_cu",
    stress: bool = False,
) -> list[str]:
    """``blueprints/mace.yaml`` and ``HYPER`` as mace-torch ``run_train`` arguments.

    mace.yaml: 2 layers of ``32x0e + 32x1o``, correlation 3, l_max 2 harmonics, 8 Bessel
    functions with a p = 5 polynomial envelope, radial MLP [64], avg_neighbours 8, a
    linear energy readout of each layer (``layer_readout``) plus a 16-unit nonlinear one
    of the last (mace: linear readouts of the layers before the last, the 16-unit MLP
    on the last, so ours has one linear readout more); per-species reference energies by least squares
    (mace: ``E0s=average``) and a force-RMS scale (mace: ``rms_forces_scaling``).
    With ``stress`` (the files carry ``REF_stress``) and ``hyper["stress_weight"] > 0``
    the loss is mace-torch's ``stress`` one (``WeightedEnergyForcesStressLoss``: the
    weighted per-atom energy and force MSEs plus ``stress_weight`` times the MSE of the
    3x3 stress components, eV/Å^3), the same terms as geocompose's loss.
    """
    loss = ["--loss", "weighted"]
    if stress and hyper.get("stress_weight", 0.0):
        loss = ["--loss", "stress", "--stress_key", "REF_stress",
                "--stress_weight", str(hyper["stress_weight"])]  # fmt: skip
    return [
        "--name", name, "--seed", str(seed), "--work_dir", str(work),
        "--train_file", str(split["train"]), "--valid_file", str(split["valid"]),
        "--energy_key", "REF_energy", "--forces_key", "REF_forces",
        "--model", "ScaleShiftMACE", "--scaling", "rms_forces_scaling", "--E0s", "average",
        "--hidden_irreps", "32x0e + 32x1o", "--max_ell", "2", "--correlation", "3",
        "--num_interactions", "2", "--r_max", "5.0",
        "--num_radial_basis", "8", "--num_cutoff_basis", "5", "--radial_MLP", "[64]",
        "--MLP_irreps", "16x0e", "--avg_num_neighbors", "8", "--compute_avg_num_neighbors", "False",
        *loss, "--energy_weight", str(hyper["energy_weight"]),
        "--forces_weight", str(hyper["forces_weight"]),
        "--batch_size", str(hyper["batch_structures"]),
        "--valid_batch_size", str(hyper["batch_structures"]),
        "--optimizer", "adam", "--lr", str(hyper["lr"]), "--weight_decay", "0.0",
        "--scheduler", "ExponentialLR", "--lr_scheduler_gamma", "1.0",
        "--ema", "--ema_decay", str(hyper["ema_decay"]), "--clip_grad", str(hyper["clip"]),
        "--max_num_epochs", str(epochs), "--patience", str(10 * epochs + 10),
        "--eval_interval", "1", "--default_dtype", "float32", "--device", "cpu",
        "--error_table", "PerAtomMAE",
    ]  # fmt: skip


def run_mace(
    split: dict,
    epochs: int,
    seed: int,
    out: Path,
    hyper: dict = HYPER,
    name: str = "mace_cu",
    work: Path | None = None,
) -> dict:
    """mace-torch's own training (runs inside the mace venv) in ``work`` (default
    ``out / "mace-torch"``)."""
    # This file is not a package module; keep its folder off the path for `import mace`.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    import torch

    torch.serialization.add_safe_globals([slice])  # e3nn 0.4.4's constants.pt
    import mace.tools.train  # noqa: F401  (mace.tools re-exports a function named train)
    from mace.calculators import MACECalculator
    from mace.cli import run_train

    # Time the training steps alone: mace's train() looks train_one_epoch up in its
    # module at every epoch, so wrapping the module attribute times each epoch's steps.
    mace_train = sys.modules["mace.tools.train"]
    timing = {"time_s": 0.0, "epochs": 0}
    inner = mace_train.train_one_epoch

    def timed_epoch(*args, **kwargs):
        start = time.perf_counter()
        result = inner(*args, **kwargs)
        timing["time_s"] += time.perf_counter() - start
        timing["epochs"] += 1
        return result

    mace_train.train_one_epoch = timed_epoch
    from ase.io import read

    work = work or out / "mace-torch"
    argv = sys.argv
    stress = "REF_stress" in read(split["train"], index="0").info
    sys.argv = [
        "mace_run_train", *mace_arguments(split, epochs, seed, work, hyper, name, stress)
    ]  # fmt: skip
    try:
        run_train.main()
    finally:
        sys.argv = argv
    n_train = len(read(split["train"], index=":"))
    model_path = work / f"{name}.model"
    calc = MACECalculator(model_paths=str(model_path), device="cpu", default_dtype="float32")
    weights = sum(p.numel() for p in calc.models[0].parameters())
    return {
        "engine": "mace-torch",
        "weights": weights,
        "epochs": timing["epochs"],
        "train_time_s": timing["time_s"],
        "structures_per_s": n_train * timing["epochs"] / timing["time_s"],
        **errors(calc, split["test"]),
        "torch_threads": torch.get_num_threads(),
    }


def versions() -> str:
    # by distribution: `import mace` here would find benchmarks/mace.py
    return harness.versions(["torch", "e3nn", "ase", "mace-torch"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="EMT Cu extxyz (scripts/generate_emt_cu.py)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--valid", type=int, default=100)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="keep runs here (default: a temporary folder)")
    parser.add_argument("--reference-python", default=DEFAULT_REFERENCE)
    parser.add_argument("--no-reference", action="store_true", help="skip mace-torch")
    parser.add_argument("--engine", choices=["geocompose", "mace-torch"], default="geocompose")
    parser.add_argument("--split-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args(argv)

    threads = harness.set_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="train-cu-"))
    out.mkdir(parents=True, exist_ok=True)

    if args.engine == "mace-torch":  # the child run, inside the mace venv
        split = {name: args.split_dir / f"{name}.extxyz" for name in ("train", "valid", "test")}
        result = run_mace(split, args.epochs, args.seed, out)
        result["versions"] = versions()
        args.json.write_text(json.dumps(result, indent=2))
        return

    split = write_split(args.data, out, args.train, args.valid, args.test, args.seed)
    print(
        f"EMT Cu, 32-atom cells: {args.train} train / {args.valid} valid / {args.test} test "
        f"structures (seed {args.seed}), {args.epochs} epochs, batch "
        f"{HYPER['batch_structures']} structures, Adam lr {HYPER['lr']} constant, EMA "
        f"{HYPER['ema_decay']}, clip {HYPER['clip']}, loss {HYPER['energy_weight']} E/atom + "
        f"{HYPER['forces_weight']} F, float32, {args.threads} thread(s)"
    )
    print(
        "models: the shipped blueprints with species cut to Cu; MACE with mace-torch's "
        "learned species embedding (see copper_blueprint)"
    )
    print(harness.header("Training on EMT copper: geocompose against mace-torch", ["ase"], threads))
    # mace-torch trains in a child process *while* geocompose trains its MACE (one thread
    # each): on a shared machine both runs then see the same background load.
    reference = None
    if "mace" in args.models and not args.no_reference:
        reply, log = out / "mace-torch.json", out / "mace-torch.log"
        command = [
            args.reference_python, str(Path(__file__).resolve()), str(args.data),
            "--engine", "mace-torch", "--split-dir", str(out), "--out", str(out),
            "--epochs", str(args.epochs), "--seed", str(args.seed),
            "--threads", str(args.threads), "--json", str(reply),
        ]  # fmt: skip
        handle = open(log, "w")  # noqa: SIM115 (closed after the child exits)
        reference = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
        reference_start = time.perf_counter()
    results = {}
    for model in sorted(args.models, key=lambda m: m != "mace"):  # MACE first, beside mace-torch
        start = time.perf_counter()
        results[model] = run_geocompose(model, split, args.epochs, args.seed, out)
        results[model]["wall_s"] = time.perf_counter() - start
        print(f"  geocompose {model}: done in {results[model]['wall_s']:.0f} s", flush=True)
    if reference is not None:
        code = reference.wait()
        handle.close()
        if code != 0:
            raise SystemExit(f"mace-torch run failed; see {log}")
        results["mace-torch"] = json.loads(reply.read_text())
        results["mace-torch"]["wall_s"] = time.perf_counter() - reference_start
        print(
            "  mace-torch (its own venv, this script with --engine mace-torch): "
            f"{results['mace-torch']['versions']}; done in {results['mace-torch']['wall_s']:.0f} s"
        )

    print()
    print(
        f"{'model':24s} {'weights':>8s} {'E MAE':>8s} {'F MAE':>8s} {'F RMSE':>8s} "
        f"{'struct/s':>9s} {'train s':>8s}"
    )
    print(f"{'':24s} {'':>8s} {'meV/at':>8s} {'meV/Å':>8s} {'meV/Å':>8s}")
    for name, r in results.items():
        label = f"{name} ({r['engine']})" if name != "mace-torch" else "mace (mace-torch)"
        print(
            f"{label:24s} {r['weights']:8d} {r['energy_mae_mev_atom']:8.2f} "
            f"{r['forces_mae_mev_A']:8.1f} {r['forces_rmse_mev_A']:8.1f} "
            f"{r['structures_per_s']:9.1f} {r['train_time_s']:8.0f}"
        )
    if "mace" in results and "mace-torch" in results:
        ratio = results["mace"]["structures_per_s"] / results["mace-torch"]["structures_per_s"]
        mae = results["mace"]["forces_mae_mev_A"] / results["mace-torch"]["forces_mae_mev_A"]
        print(
            f"\nMACE, geocompose / mace-torch: training throughput x{ratio:.2f}, "
            f"force MAE x{mae:.2f}"
        )
    print(harness.footer())
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
