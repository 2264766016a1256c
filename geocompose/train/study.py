"""A study: several blueprints trained on the same data, budget and seed, side by side.

Each blueprint goes through the one training loop (:class:`~geocompose.train.Trainer`)
with the same :class:`~geocompose.train.config.TrainConfig` and the same train / valid /
test split; then its best checkpoint is evaluated on the test split (energy and force
errors, :func:`~geocompose.train.metrics.evaluate`), its symmetry is measured on the
test structures and its energy drift in a short NVE run on the first test molecule,
both with the verifier's own checks (float64), and its speed is timed. With several
training-set sizes, each size is a run of its own on the first ``n`` structures of the
same (seeded, shuffled) training split and the same test split: a learning curve. It
compares symmetry strategies (built-in equivariance, frames, canonicalisation,
augmentation) on equal terms::

    rows = study(["blueprints/painn.yaml", "blueprints/mlp-weighted-frames.yaml"],
                 Dataset.from_file("data.extxyz"), TrainConfig(epochs=20, test_fraction=0.2),
                 out="runs/study")
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch

from geocompose.compiler import load as load_blueprint
from geocompose.data.dataset import Dataset, Splits
from geocompose.errors import StructureError
from geocompose.train.checkpoint import load_potential
from geocompose.train.config import TrainConfig
from geocompose.train.metrics import evaluate
from geocompose.train.trainer import Trainer
from geocompose.types.group import Group
from geocompose.verification import checks, curves
from geocompose.verification.record import Sample, Skip
from geocompose.verification.subject import compiled_subject

__all__ = ["StudyRow", "study", "study_plot", "write_csv"]

INFERENCE_REPEATS = 3


@dataclass(frozen=True)
class StudyRow:
    """One blueprint's figures (errors on the test split; speeds on this machine).

    Args:
        blueprint: its name.
        strategy: its symmetry strategy, with ``(approximate)`` where the claim is.
        claim: the group claimed.
        energy_mae: test energy MAE per atom (eV/atom).
        forces_mae: test force MAE per component (eV/Å; NaN without forces).
        rotation_error: largest relative error of any output under a random rotation of
            the test structures (float64); reflection_error likewise (rotation-reflection).
        train_s_per_epoch: mean wall time of a training epoch.
        inference_ms_per_structure: evaluation time (energy and forces) per test structure.
        epochs: epochs trained; best_epoch: the epoch of the checkpoint evaluated.
        weights: number of weights.
        train_structures: structures in the training split of this run.
        nve_drift: |E_total(end) - E_total(0)| of the verifier's NVE run on the first
            test molecule, relative to how much the potential energy moved (NaN where
            the test split has no molecule).
    """

    blueprint: str
    strategy: str
    claim: str
    energy_mae: float
    forces_mae: float
    rotation_error: float
    reflection_error: float
    train_s_per_epoch: float
    inference_ms_per_structure: float
    epochs: int
    best_epoch: int
    weights: int
    train_structures: int
    nve_drift: float


def physics_figures(model, data: Dataset, test: list[int], seed: int) -> tuple[float, ...]:
    """(rotation, reflection, NVE drift) of ``model`` on the test structures, measured
    by the verifier's own checks on a float64 copy."""
    subject = compiled_subject(model)
    batch = data.collate(test, torch.float64)
    labels = [f"test structure {i}" for i in test]
    gen = torch.Generator().manual_seed(seed)
    rotation = checks.rotation_check(subject, batch, labels, gen, improper=False).worst
    reflection = checks.rotation_check(subject, batch, labels, gen, improper=True).worst
    structures = [(label, data.to_atoms(i)) for label, i in zip(labels, test)]
    sample = Sample(subject, structures, [], batch, labels, gen, seed)
    nve = curves.nve_check(sample)
    drift = float("nan") if isinstance(nve, Skip) else nve[0][1].worst
    return rotation, reflection, drift


def study(
    blueprints: list,
    data: Dataset,
    config: TrainConfig,
    out: str | Path = "study",
    echo=print,
    sizes: list[int] | None = None,
) -> list[StudyRow]:
    """Train and measure each blueprint under ``config``; one subfolder of ``out`` each
    (``<name>-n<size>`` per training-set size when ``sizes`` are given).

    Raises:
        StructureError: the split leaves no test structure (set ``test_fraction``).
        BlueprintError: a blueprint is invalid (before anything trains).
    """
    out = Path(out)
    names = [load_blueprint(bp).blueprint.name for bp in blueprints]  # all valid first
    if len(set(names)) != len(names):
        raise StructureError(f"two blueprints share a name ({', '.join(names)}): rename one")
    splits: Splits = data.split(config.valid_fraction, config.test_fraction, config.seed)
    if not splits.test:
        raise StructureError("a study evaluates on a test split: give a test fraction above 0")
    if sizes and not all(0 < n <= len(splits.train) for n in sizes):
        raise StructureError(
            f"training-set sizes must be between 1 and the {len(splits.train)} training "
            f"structures of the split; got {', '.join(map(str, sizes))}"
        )
    runs = [(bp, name, n) for bp, name in zip(blueprints, names) for n in (sizes or [None])]
    rows = []
    for blueprint, name, size in runs:
        run_splits = replace(splits, train=splits.train[:size]) if size else splits
        folder = out / (f"{name}-n{size}" if size else name)
        echo(f"study: training {name} on {len(run_splits.train)} structures")
        trainer = Trainer(
            blueprint, data, replace(config), folder, run_splits, progress=False, echo=echo
        )
        result = trainer.fit()
        potential = load_potential(result.best)
        test_batches = data.batches(
            splits.test, config.atoms_per_batch, dtype=potential.model.dtype
        )
        metrics, _ = evaluate(potential, test_batches)
        start = time.perf_counter()
        for _ in range(INFERENCE_REPEATS):
            evaluate(potential, test_batches)
        inference = (time.perf_counter() - start) / INFERENCE_REPEATS / len(splits.test)
        trace = potential.model.trace
        rotation, reflection, drift = physics_figures(
            potential.model, data, splits.test, config.seed
        )
        values = metrics.compute()
        epoch_times = [row["time_s"] for row in result.history if "time_s" in row]
        rows.append(
            StudyRow(
                blueprint=name,
                strategy=trace.strategy + ("" if trace.exact else " (approximate)"),
                claim=trace.claim.value,
                energy_mae=values.get("energy_per_atom_mae", float("nan")),
                forces_mae=values.get("forces_mae", float("nan")),
                rotation_error=rotation,
                reflection_error=reflection if trace.claim is Group.O3 else float("nan"),
                train_s_per_epoch=sum(epoch_times) / max(len(epoch_times), 1),
                inference_ms_per_structure=1e3 * inference,
                epochs=result.epochs,
                best_epoch=result.best_epoch,
                weights=sum(p.numel() for p in potential.model.parameters()),
                train_structures=len(run_splits.train),
                nve_drift=drift,
            )
        )
    return rows


def write_csv(rows: list[StudyRow], path: str | Path) -> Path:
    """The rows as CSV, one column per :class:`StudyRow` field."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(StudyRow)])
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    return path


def study_plot(rows: list[StudyRow], path: str | Path) -> Path:
    """Test force MAE against training-set size, one line per blueprint (a learning
    curve) when there are several sizes, else against inference time (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    curve = len({row.train_structures for row in rows}) > 1
    for name in dict.fromkeys(row.blueprint for row in rows):
        mine = [row for row in rows if row.blueprint == name]
        if curve:
            ax.plot(
                [r.train_structures for r in mine], [r.forces_mae for r in mine], "o-", label=name
            )
        else:
            ax.scatter([r.inference_ms_per_structure for r in mine], [r.forces_mae for r in mine])
            ax.annotate(name, (mine[0].inference_ms_per_structure, mine[0].forces_mae), fontsize=8)
    if curve:
        ax.set_xlabel("training structures")
        ax.legend(fontsize=7)
    else:
        ax.set_xlabel("inference (ms per structure)")
    ax.set_ylabel("test force MAE (eV/Å)")
    ax.set_xscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
