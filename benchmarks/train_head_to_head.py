"""Head-to-head training benchmark: geocompose against the reference code of each architecture.

One data set, one time-ordered split, one set of hyperparameters and one budget for
both engines of a pair, several seeds; reported: energy and force (and stress) MAE on
the test stretch and training throughput (structures/s of the training steps alone).

Pairs (``--pairs``): ``mace`` (``blueprints/mace.yaml`` against mace-torch, which pins
e3nn 0.4.4 and so lives in its own venv); ``nequip`` (``blueprints/nequip.yaml``
against nequip 0.19.1's ``nequip-train``, in its venv: ``peers/nequip_train.py``);
``painn`` (``blueprints/painn.yaml`` against schnetpack 2.1.1's PaiNN, ``Atomwise`` and
``Forces`` modules, driven by ``peers/schnetpack_train.py`` in a plain loop with the
same hyperparameters: schnetpack's own trainer does not import on torch 2.13; this
venv's python with ``/work/venvs/spk-lib`` on the path). The reference side is this
same script run under the peer's python (``--engine mace-torch``, ``nequip`` or
``schnetpack``) on the extxyz files the geocompose side wrote; both sides score their
model through its ASE calculator with the same ``errors`` function (``train_cu.py``'s).

Stress: where every structure is a 3D-periodic cell with a stress (EMT Cu), both MACE
engines add ``stress_weight`` x the per-component stress MSE to the loss (mace-torch's
``--loss stress``) and the stress MAE is reported; the nequip and painn pairs train
energy and forces only on such data, on both sides (their peers' loops here have no
stress loss), and are not scored on stress; ``--shuffle-split SEED`` draws the
split at random for such data (several runs at several temperatures and strains)::

    python scripts/generate_emt_cu.py --out cu_emt.extxyz
    python benchmarks/train_head_to_head.py cu=cu_emt.extxyz --pairs mace --shuffle-split 0 \\
        --seeds 0 1 2 --epochs 4 --train 64 --valid 16 --test 100 --threads 1

Data: molecular dynamics trajectories in time order (``scripts/generate_xtb_molecule.py
--temperatures 500 --snapshots 1200``: GFN2-xTB ethanol, one frame per 5 fs). The
first ``--train`` frames train, the next ``--valid`` validate, the last ``--test``
frames test: the model is judged on a later stretch of the trajectory than it saw.

Runs are sequential (one training at a time on a shared machine), interleaved by seed
(geocompose, then the reference, then the next seed), each with its load average
recorded at start and end; throughput ratios are per seed, between runs taken back to
back. Run::

    python scripts/generate_xtb_molecule.py --temperatures 500 --snapshots 1200 \\
        --out ethanol_md.extxyz
    python benchmarks/train_head_to_head.py ethanol=ethanol_md.extxyz --pairs mace \\
        --seeds 0 1 2 --epochs 8 --train 300 --valid 50 --test 300 --threads 1
    python scripts/generate_xtb_molecule.py --molecule biphenyl --temperatures 500 \\
        --snapshots 1200 --out biphenyl_md.extxyz
    python benchmarks/train_head_to_head.py ethanol=ethanol_md.extxyz \\
        biphenyl=biphenyl_md.extxyz --pairs painn --seeds 0 1 2 --epochs 4 --train 200 \\
        --valid 50 --test 200 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import train_cu  # (this folder is not a package)
from train_cu import versions

# Then off the path again (the script's own folder included): benchmarks/mace.py would
# shadow the `mace` package in the peer's venv.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
REFERENCE_PYTHON = {
    "mace": "/work/venvs/mace/bin/python",
    "nequip": "/work/venvs/nequip/bin/python",
    "painn": sys.executable,
}
REFERENCE_ENGINE = {"mace": "mace-torch", "nequip": "nequip", "painn": "schnetpack"}
# Prepended to the peer's PYTHONPATH: schnetpack lives in a folder of its own, beside
# this venv (see benchmarks/peers/schnetpack_train.py).
REFERENCE_PATH = {"painn": "/work/venvs/spk-lib"}

# One set of hyperparameters for both engines of every pair.
HYPER = {
    "batch_structures": 8,
    "lr": 1e-2,  # mace-torch's default, and geocompose's for e3nn models
    "ema_decay": 0.99,
    "clip": 10.0,
    "energy_weight": 1.0,  # per-atom energy MSE
    "forces_weight": 10.0,  # per-component force MSE
    "stress_weight": 1.0,  # per-component stress MSE, (eV/Å^3)^2, where the data has stress
}
# Per pair: PaiNN's weights are torch.nn.Linear's (fan-in scaled), for which geocompose's
# default rate is 1e-3 (train/learning_rate.py); both engines of the pair get it.
PAIR_HYPER = {"painn": {"lr": 1e-3}}
STRESS_PAIRS = {"mace"}  # pairs whose both engines train a stress loss


def hyper_of(pair: str) -> dict:
    return {**HYPER, **PAIR_HYPER.get(pair, {})}


def write_split(
    data: Path, work: Path, n_train: int, n_valid: int, n_test: int, shuffle: int | None = None
) -> dict:
    """Time-ordered train / valid / test files: the first frames, the next, the last;
    with ``shuffle`` a seeded draw instead (``train_cu.py``'s, for data that is not one
    trajectory, e.g. EMT Cu's runs at several temperatures and strains)."""
    from ase.io import read, write

    if shuffle is not None:
        return train_cu.write_split(data, work, n_train, n_valid, n_test, shuffle)
    frames = read(data, index=":")
    if n_train + n_valid + n_test > len(frames):
        raise SystemExit(
            f"{data}: {len(frames)} structures, asked for {n_train + n_valid + n_test}"
        )
    chosen = {
        "train": frames[:n_train],
        "valid": frames[n_train : n_train + n_valid],
        "test": frames[len(frames) - n_test :],
    }
    paths = {}
    for name, stretch in chosen.items():
        for atoms in stretch:
            train_cu.reference_keys(atoms)
        paths[name] = work / f"{name}.extxyz"
        write(paths[name], stretch, format="extxyz")
    return paths


def species_of(path: Path) -> list[str]:
    from ase.data import atomic_numbers
    from ase.io import read

    symbols = {s for atoms in read(path, index=":") for s in atoms.get_chemical_symbols()}
    return sorted(symbols, key=atomic_numbers.get)


def geocompose_blueprint(pair: str, species: list[str], path: Path | None = None) -> dict:
    """The shipped blueprint (or the one at ``path``), species cut to the data's
    (mace-torch takes them from the data) and, for MACE, mace-torch's learned node
    embedding (as in ``train_cu.py``); for NequIP nequip's 16-wide learned embedding;
    PaiNN as shipped."""
    import yaml

    blueprint = yaml.safe_load((path or ROOT / "blueprints" / f"{pair}.yaml").read_text())
    blueprint["embedding"]["species"] = species
    if pair == "mace":
        blueprint["embedding"]["node"] = {"type": "learned", "features": 32}
    if pair == "nequip":  # nequip embeds species into 16 learned scalars (its type embedding)
        blueprint["embedding"]["node"] = {"type": "learned", "features": 16}
    return blueprint


def run_geocompose(
    pair: str, split: dict, epochs: int, seed: int, out: Path, path: Path | None = None
) -> dict:
    from ase.io import read

    blueprint = geocompose_blueprint(pair, species_of(split["train"]), path)
    hyper = hyper_of(pair)
    # Stress trains where the data has it (as mace-torch decides) and the pair's peer
    # trains it too: the nequip and schnetpack loops here have energy and forces only.
    if pair not in STRESS_PAIRS or "REF_stress" not in read(split["train"], index="0").info:
        hyper["stress_weight"] = 0.0
    return train_cu.run_geocompose(pair, split, epochs, seed, out, hyper, blueprint)


def run_mace_torch(split: dict, epochs: int, seed: int, out: Path) -> dict:
    """mace-torch's own ``run_train`` (inside its venv) with ``train_cu.py``'s mapping of
    ``blueprints/mace.yaml`` onto its arguments and this benchmark's ``HYPER``."""
    return train_cu.run_mace(split, epochs, seed, out, hyper_of("mace"), name="mace", work=out)


def run_nequip(split: dict, epochs: int, seed: int, out: Path) -> dict:
    """nequip's own ``nequip-train`` (inside its venv): ``peers/nequip_train.py``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "nequip_train", HERE / "peers" / "nequip_train.py"
    )
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    # its EnergyForceLoss trains no stress: neither side is scored on one
    return peer.run(
        split, epochs, seed, out, hyper_of("nequip"), partial(train_cu.errors, score_stress=False)
    )


def run_schnetpack(split: dict, epochs: int, seed: int, out: Path) -> dict:
    """schnetpack's PaiNN modules in a plain loop with this benchmark's hyperparameters
    (its own trainer does not import on this torch: ``peers/schnetpack_train.py``)."""
    sys.path.insert(0, str(HERE / "peers"))
    import schnetpack_train

    return schnetpack_train.run(split, epochs, seed, out, hyper_of("painn"))


REFERENCE_RUNNERS = {
    "mace-torch": run_mace_torch,
    "nequip": run_nequip,
    "schnetpack": run_schnetpack,
}


def run_reference(pair: str, args, split_dir: Path, seed: int, out: Path) -> dict:
    """This script under the peer's python, on the split files in ``split_dir``."""
    reply, log = out / "result.json", out / "run.log"
    command = [
        args.reference_python or REFERENCE_PYTHON[pair], str(Path(__file__).resolve()),
        "--engine", REFERENCE_ENGINE[pair], "--split-dir", str(split_dir), "--out", str(out),
        "--epochs", str(args.epochs), "--seeds", str(seed), "--threads", str(args.threads),
        "--json", str(reply),
    ]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if pair in REFERENCE_PATH:
        env["PYTHONPATH"] = os.pathsep.join(
            [REFERENCE_PATH[pair], *filter(None, [env.get("PYTHONPATH")])]
        )
    with open(log, "w") as handle:
        code = subprocess.run(
            command, check=False, stdout=handle, stderr=subprocess.STDOUT, env=env
        ).returncode
    if code != 0:
        raise SystemExit(f"{REFERENCE_ENGINE[pair]} run failed (exit {code}); see {log}")
    return json.loads(reply.read_text())


def timed(run, *args) -> dict:
    """``run(*args)`` with its wall time and the load average at its start and end."""
    load, start = os.getloadavg()[0], time.perf_counter()
    result = run(*args)
    return {**result, "wall_s": time.perf_counter() - start, "load": [load, os.getloadavg()[0]]}


def summary(rows: list[dict], key: str) -> str:
    values = np.array([row[key] for row in rows])
    return f"{values.mean():.1f} ± {values.std():.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def _stress(row: dict) -> str:
    return f"S MAE {row['stress_mae_mev_A3']:.2f} meV/Å^3, " if "stress_mae_mev_A3" in row else ""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="*", help="NAME=PATH extxyz trajectories, in time order")
    parser.add_argument("--pairs", nargs="+", default=["mace"], choices=sorted(REFERENCE_PYTHON))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--valid", type=int, default=50)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--shuffle-split",
        type=int,
        metavar="SEED",
        help="draw the split with this seed instead of in time order (data of several runs)",
    )
    parser.add_argument("--out", type=Path, help="keep runs here (default: a temporary folder)")
    parser.add_argument("--reference-python", help="the peer's python (default per pair)")
    parser.add_argument(
        "--engine", choices=["geocompose", *REFERENCE_RUNNERS], default="geocompose"
    )
    parser.add_argument("--split-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument(
        "--blueprint",
        nargs="+",
        default=[],
        metavar="PAIR=PATH",
        help="train this blueprint on geocompose's side of PAIR instead of the shipped one "
        "(the same species and embedding changes apply)",
    )
    args = parser.parse_args(argv)
    blueprints = {}
    for given in args.blueprint:
        pair, _, path = given.partition("=")
        if pair not in args.pairs or not Path(path).is_file():
            parser.error(f"--blueprint {given}: want PAIR=PATH, a pair of --pairs and a file")
        blueprints[pair] = Path(path)
    import torch

    torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="head-to-head-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.engine != "geocompose":  # the peer's side, inside its venv
        split = {name: args.split_dir / f"{name}.extxyz" for name in ("train", "valid", "test")}
        result = REFERENCE_RUNNERS[args.engine](split, args.epochs, args.seeds[0], out)
        args.json.write_text(json.dumps({**result, "versions": versions()}, indent=2))
        return

    print(
        f"{args.train} train / {args.valid} valid / last {args.test} test frames; {args.epochs} "
        f"epochs, batch {HYPER['batch_structures']} structures, Adam lr {HYPER['lr']} constant "
        f"{PAIR_HYPER or ''}, EMA {HYPER['ema_decay']}, clip {HYPER['clip']}, loss "
        f"{HYPER['energy_weight']} E/atom + {HYPER['forces_weight']} F (+ "
        f"{HYPER['stress_weight']} stress where the data has it), float32, {args.threads} "
        f"thread(s); {versions()}"
        + "".join(f"; geocompose's {pair}: {path}" for pair, path in blueprints.items()),
        flush=True,
    )
    results = []
    for entry in args.data:
        name, _, path = entry.partition("=")
        split_dir = out / name
        split_dir.mkdir(parents=True, exist_ok=True)
        split = write_split(
            Path(path), split_dir, args.train, args.valid, args.test, args.shuffle_split
        )
        for pair in args.pairs:
            for seed in args.seeds:
                ours = timed(
                    run_geocompose,
                    pair,
                    split,
                    args.epochs,
                    seed,
                    split_dir / f"{pair}-geocompose-{seed}",
                    blueprints.get(pair),
                )
                theirs = timed(
                    run_reference,
                    pair,
                    args,
                    split_dir,
                    seed,
                    split_dir / f"{pair}-reference-{seed}",
                )
                for row in (ours, theirs):
                    row.update(data=name, pair=pair, seed=seed)
                    print(
                        f"  {name} {pair} seed {seed} {row['engine']}: F MAE "
                        f"{row['forces_mae_mev_A']:.1f} meV/Å, E MAE {row['energy_mae_mev_atom']:.2f} "
                        f"meV/atom, {_stress(row)}{row['structures_per_s']:.1f} structures/s, load "
                        f"{row['load'][0]:.1f}->{row['load'][1]:.1f}",
                        flush=True,
                    )
                results += [ours, theirs]
                if args.json:
                    args.json.write_text(json.dumps(results, indent=2))
    print(
        "\n| data | model | engine | weights | E MAE (meV/atom) | F MAE (meV/Å) | "
        "S MAE (meV/Å^3) | structures/s |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    groups = {}
    for row in results:
        groups.setdefault((row["data"], row["pair"], row["engine"]), []).append(row)
    for (data, pair, engine), rows in groups.items():
        print(
            f"| {data} | {pair} | {engine} | {rows[0]['weights']:,} | "
            f"{summary(rows, 'energy_mae_mev_atom')} | {summary(rows, 'forces_mae_mev_A')} | "
            f"{summary(rows, 'stress_mae_mev_A3') if 'stress_mae_mev_A3' in rows[0] else '–'} | "
            f"{summary(rows, 'structures_per_s')} |"
        )
    for data, pair in {(r["data"], r["pair"]) for r in results}:
        ours = [
            r for r in results if (r["data"], r["pair"], r["engine"]) == (data, pair, "geocompose")
        ]
        theirs = [
            r
            for r in results
            if (r["data"], r["pair"]) == (data, pair) and r["engine"] != "geocompose"
        ]
        speed = [a["structures_per_s"] / b["structures_per_s"] for a, b in zip(ours, theirs)]
        mae = [a["forces_mae_mev_A"] / b["forces_mae_mev_A"] for a, b in zip(ours, theirs)]
        print(
            f"{data} {pair}: geocompose / {theirs[0]['engine']} throughput per seed "
            f"{', '.join(f'x{s:.2f}' for s in speed)}; force MAE {', '.join(f'x{m:.2f}' for m in mae)}"
        )


if __name__ == "__main__":
    main()
