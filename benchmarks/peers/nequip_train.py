"""nequip 0.19.1's own training (``nequip-train``) for ``train_head_to_head.py``'s pair ``nequip``.

The config route: :func:`nequip_config` writes a Hydra config for ``nequip-train``
(nequip's ``ASEDataModule`` on the split files, ``FullNequIPGNNModel``, its
``EMALightningModule`` with its ``EnergyForceLoss``, Adam, a Lightning ``Trainer``
with a best-validation checkpoint), :func:`run` runs ``nequip-train`` on it in this
venv and scores the best checkpoint through nequip's ASE calculator. Runs inside the
nequip venv (``python3 -m venv /work/venvs/nequip && pip install torch==2.13.0
nequip==0.19.1``); imports nothing from geocompose.

The model is ``blueprints/nequip.yaml`` in nequip's terms (:data:`WIDTHS`), with
the head-to-head's learned 16-wide species embedding on the geocompose side (nequip
always embeds species; the blueprint's one-hot has no nequip counterpart). What
nequip cannot express the same way:

* its self-connection is a tensor product with the type embedding (16 wide) where
  geocompose's is a linear per species; ``learnable_shift`` turns it on in the first
  layer too, as the blueprint has it;
* the residual: ``convnet_resnet`` adds it where the irreps agree (layer 2), as
  geocompose does (both last layers write scalars only, ``16x0e``);
* no biases in its radial and readout MLPs; fixed Bessel frequencies.

Per-species energy shifts and the scale follow nequip's own recipe (the mean
per-atom energy and the force RMS of the training data), where geocompose fits E0s by
least squares and scales by the force RMS; on one molecule's trajectory (fixed
composition) the two shifts give the same energies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# blueprints/nequip.yaml (checked against the file by tests/benchmarks/test_nequip_peer.py).
WIDTHS = {
    "features": "16x0e + 8x1o + 4x2e",
    "layers": 3,
    "l_max": 2,
    "radial_hidden": 32,
    "bessel": 8,
    "envelope_p": 6,
    "cutoff": 5.0,
    "readout_hidden": 16,
    "avg_neighbours": 8.0,  # geocompose's default (the blueprint sets none)
    "embedding": 16,  # the head-to-head's learned embedding (train_head_to_head.py)
}


def scalar_part(irreps: str) -> str:
    """The ``0e`` term of an irreps string (nequip's last layer writes only it)."""
    return next(term.strip() for term in irreps.split("+") if term.strip().endswith("x0e"))


def model_config(species: list[str], seed: int, widths: dict = WIDTHS) -> dict:
    """``FullNequIPGNNModel`` arguments (Hydra ``_target_`` form) for ``widths``."""
    layers = widths["layers"]
    return {
        "_target_": "nequip.model.FullNequIPGNNModel",
        "seed": seed,
        "model_dtype": "float32",
        "type_names": list(species),
        "r_max": widths["cutoff"],
        "type_embed_num_features": widths["embedding"],
        "feature_irreps_hidden": [widths["features"]] * (layers - 1)
        + [scalar_part(widths["features"])],
        "irreps_edge_sh": " + ".join(
            f"1x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(widths["l_max"] + 1)
        ),
        "radial_mlp_depth": [1] * layers,
        "radial_mlp_width": [widths["radial_hidden"]] * layers,
        "num_bessels": widths["bessel"],
        "polynomial_cutoff_p": widths["envelope_p"],
        "avg_num_neighbors": widths["avg_neighbours"],
        "readout_mlp_hidden_layers_depth": 1,
        "readout_mlp_hidden_layers_width": widths["readout_hidden"],
        "readout_mlp_nonlinearity": "silu",
        "convnet_resnet": True,
        "learnable_shift": True,  # self-connection (and resnet) on the first layer too
        "per_type_energy_shifts": "${training_data_stats:per_atom_energy_mean}",
        "per_type_energy_scales": "${training_data_stats:forces_rms}",
    }


def nequip_config(
    split: dict, epochs: int, seed: int, out: Path, hyper: dict, species: list[str]
) -> dict:
    """The whole ``nequip-train`` config: data, model, loss, optimiser, trainer."""
    transforms = [
        {
            "_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
            "model_type_names": list(species),
        },
        {"_target_": "nequip.data.transforms.NeighborListTransform", "r_max": WIDTHS["cutoff"]},
    ]
    batch = hyper["batch_structures"]
    loader = {"_target_": "torch.utils.data.DataLoader", "batch_size": batch}
    loss = {
        "_target_": "nequip.train.EnergyForceLoss",
        "per_atom_energy": True,  # per-atom energy MSE, per-component force MSE
        "coeffs": {"total_energy": hyper["energy_weight"], "forces": hyper["forces_weight"]},
    }
    return {
        "run": ["train"],
        "seed": seed,
        "data": {
            "_target_": "nequip.data.datamodule.ASEDataModule",
            "seed": seed,
            "train_file_path": str(split["train"]),
            "val_file_path": str(split["valid"]),
            "transforms": transforms,
            "train_dataloader": {**loader, "shuffle": True},
            "val_dataloader": loader,
            "stats_manager": {
                "_target_": "nequip.data.CommonDataStatisticsManager",
                "type_names": list(species),
            },
        },
        "trainer": {
            "_target_": "lightning.Trainer",
            "max_epochs": epochs,
            "accelerator": "cpu",
            "check_val_every_n_epoch": 1,
            "gradient_clip_val": hyper["clip"],  # norm clipping, as geocompose and mace-torch
            "enable_progress_bar": False,
            "logger": False,
            "callbacks": [
                {
                    "_target_": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "monitor": "val0_epoch/weighted_sum",
                    "dirpath": str(out),
                    "filename": "best",
                    "save_top_k": 1,
                },
                {"_target_": "nequip_timer.TrainStepTimer", "out_file": str(out / "timing.json")},
            ],
        },
        "training_module": {
            "_target_": "nequip.train.EMALightningModule",
            "ema_decay": hyper["ema_decay"],
            "loss": loss,
            # the best checkpoint is judged by the training loss on the validation set,
            # as geocompose's trainer judges best.pt
            "val_metrics": loss,
            "optimizer": {"_target_": "torch.optim.Adam", "lr": hyper["lr"]},
            "model": model_config(species, seed),
        },
    }


def run(split: dict, epochs: int, seed: int, out: Path, hyper: dict, errors) -> dict:
    """``nequip-train`` on the split, then ``errors(calculator, test file)`` of the best
    (EMA) checkpoint; throughput from :class:`nequip_timer.TrainStepTimer`."""
    from importlib.metadata import version

    import torch
    import yaml
    from ase.data import atomic_numbers
    from ase.io import read

    frames = read(split["train"], index=":")
    species = sorted({s for a in frames for s in a.get_chemical_symbols()}, key=atomic_numbers.get)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = nequip_config(split, epochs, seed, out, hyper, species)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
        "PYTHONWARNINGS": "ignore",
    }
    command = [str(Path(sys.executable).parent / "nequip-train"), "-cp", str(out),
               "-cn", "config", f"hydra.run.dir={out / 'hydra'}"]  # fmt: skip
    with open(out / "nequip-train.log", "w") as log:
        code = subprocess.run(
            command, check=False, env=env, stdout=log, stderr=subprocess.STDOUT
        ).returncode
    if code != 0:
        raise SystemExit(f"nequip-train failed (exit {code}); see {out / 'nequip-train.log'}")
    from nequip.integrations.ase import NequIPCalculator

    # nequip's loader for checkpoints and packages (the EMA weights of a checkpoint)
    calc = NequIPCalculator._from_saved_model(
        str(out / "best.ckpt"), device="cpu", chemical_species_to_atom_type_map=True
    )
    timing = json.loads((out / "timing.json").read_text())
    return {
        "engine": "nequip",
        "weights": sum(p.numel() for p in calc.model.parameters()),
        "epochs": timing["epochs"],
        "train_time_s": timing["time_s"],
        "structures_per_s": timing["structures"] / timing["time_s"],
        **errors(calc, split["test"]),
        "torch_threads": torch.get_num_threads(),
        "peer_versions": {name: version(name) for name in ("nequip", "lightning")},
    }
