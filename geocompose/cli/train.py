"""geocompose train: fit a blueprint to reference energies and forces.

DATA is any file ASE reads (extxyz first) whose structures carry an energy, and forces
(and stress) when their loss weights are not zero. Writes into --out: ``best.pt``
(lowest validation loss, averaged weights), ``last.pt`` (for --resume),
``metrics.csv`` (one row per epoch) and TensorBoard events when ``tensorboard`` is
installed. Checkpoints embed the blueprint, so ``evaluate`` and the ASE calculator need
only the checkpoint::

    geocompose train examples/blueprints/schnet_small.yaml \\
        geocompose/data/examples/cu_emt_small.extxyz --epochs 20 --out runs/cu
    geocompose train examples/blueprints/schnet_small.yaml \\
        geocompose/data/examples/cu_emt_small.extxyz --epochs 40 --out runs/cu --resume

Under ``torchrun`` it trains data-parallel, one process per GPU (or CPU processes over
gloo); only rank 0 prints and writes::

    torchrun --standalone --nproc_per_node 2 -m geocompose train BLUEPRINT DATA --device cuda
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from rich.table import Table

from geocompose.cli.common import EXIT_OK, CommandError, console, device
from geocompose.compiler import load as load_blueprint
from geocompose.data.dataset import Dataset
from geocompose.train import TrainConfig, Trainer, distributed, evaluate, load_potential
from geocompose.train.schedule import SCHEDULES

__all__ = ["add_arguments", "metrics_table", "run"]

DEFAULTS = TrainConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("blueprint", metavar="BLUEPRINT", help="blueprint YAML file")
    parser.add_argument(
        "data", metavar="DATA", help="reference data (extxyz, or any file ASE reads)"
    )
    parser.add_argument("--out", default="run", help="output directory (default: %(default)s)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    run = parser.add_argument_group("schedule")
    run.add_argument(
        "--epochs", type=int, default=None, help=f"epochs (default: {DEFAULTS.epochs})"
    )
    run.add_argument(
        "--batch-atoms",
        dest="atoms_per_batch",
        type=int,
        help=f"atoms per batch ({DEFAULTS.atoms_per_batch})",
    )
    run.add_argument(
        "--batch-edges",
        dest="edges_per_batch",
        type=int,
        help="also cap the edges per batch (neighbour-list pairs; default: no cap)",
    )
    run.add_argument("--lr", type=float, help=f"initial learning rate, AdamW ({DEFAULTS.lr})")
    run.add_argument(
        "--weight-decay", type=float, help=f"AdamW weight decay ({DEFAULTS.weight_decay})"
    )
    run.add_argument(
        "--schedule", choices=SCHEDULES, help=f"learning-rate schedule ({DEFAULTS.schedule})"
    )
    run.add_argument(
        "--ema-decay", type=float, help=f"weight averaging decay, 0 = off ({DEFAULTS.ema_decay})"
    )
    run.add_argument("--clip", type=float, help=f"max gradient norm, 0 = off ({DEFAULTS.clip})")
    run.add_argument(
        "--patience",
        type=int,
        help=f"early stopping patience in epochs, 0 = off ({DEFAULTS.patience})",
    )
    loss = parser.add_argument_group("loss")
    loss.add_argument(
        "--energy-weight", type=float, help=f"per-atom energy weight ({DEFAULTS.energy_weight})"
    )
    loss.add_argument(
        "--forces-weight", type=float, help=f"force weight ({DEFAULTS.forces_weight})"
    )
    loss.add_argument(
        "--stress-weight", type=float, help=f"stress weight ({DEFAULTS.stress_weight})"
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--valid-fraction", type=float, help=f"validation fraction ({DEFAULTS.valid_fraction})"
    )
    data.add_argument(
        "--test-fraction", type=float, help=f"test fraction ({DEFAULTS.test_fraction})"
    )
    data.add_argument(
        "--split-files",
        nargs="+",
        metavar="FILE",
        help="index files TRAIN VALID [TEST] instead of fractions",
    )
    data.add_argument("--energy-key", default="energy", help="name of the energy in the file")
    data.add_argument("--forces-key", default="forces", help="name of the forces in the file")
    data.add_argument("--stress-key", default="stress", help="name of the stress in the file")
    other = parser.add_argument_group("other")
    other.add_argument(
        "--seed", type=int, help=f"seed of weights, split and batch order ({DEFAULTS.seed})"
    )
    other.add_argument(
        "--dtype", choices=("float32", "float64"), help=f"parameter dtype ({DEFAULTS.dtype})"
    )
    other.add_argument("--device", type=device, help=f"torch device ({DEFAULTS.device})")
    other.add_argument(
        "--autocast",
        choices=("off", "bf16"),
        help=f"mixed precision for the training steps ({DEFAULTS.autocast})",
    )
    other.add_argument(
        "--no-progress", action="store_true", help="one line per epoch instead of a live bar"
    )


def read_data(args: argparse.Namespace) -> Dataset:
    return Dataset.from_file(
        args.data,
        energy_key=args.energy_key,
        forces_key=args.forces_key,
        stress_key=args.stress_key,
    )


def _config(args: argparse.Namespace) -> TrainConfig:
    values = {
        f.name: getattr(args, f.name)
        for f in fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }
    config = TrainConfig(**values)
    if config.epochs < 1 or config.atoms_per_batch < 1 or config.edges_per_batch < 0:
        raise CommandError("--epochs, --batch-atoms and --batch-edges must be positive")
    if config.lr <= 0:
        raise CommandError(f"--lr must be positive; got {config.lr}")
    return config


def metrics_table(title: str, metrics: dict[str, float]) -> Table:
    """MAE and RMSE of each quantity, energies per structure and per atom, in meV."""
    table = Table(title=title, title_justify="left")
    for column in ("quantity", "MAE", "RMSE", "unit"):
        table.add_column(column, justify="left" if column in ("quantity", "unit") else "right")
    rows = [
        ("energy per structure", "energy", "meV"),
        ("energy per atom", "energy_per_atom", "meV/atom"),
        ("forces (per component)", "forces", "meV/Å"),
        ("stress (per component)", "stress", "meV/Å³"),
    ]
    for label, key, unit in rows:
        if f"{key}_mae" in metrics:
            table.add_row(
                label,
                f"{1000 * metrics[key + '_mae']:.3f}",
                f"{1000 * metrics[key + '_rmse']:.3f}",
                unit,
            )
    return table


def run(args: argparse.Namespace) -> int:
    # Under torchrun: join the process group first, so ranks other than 0 stay silent.
    distributed.setup(args.device or DEFAULTS.device)
    try:
        return _train(args)
    finally:
        distributed.teardown()


def _train(args: argparse.Namespace) -> int:
    out = console()
    out.quiet = not distributed.is_main()  # errors still reach stderr from every rank
    data = read_data(args)
    echo = lambda line: out.print(line, highlight=False)
    progress = not args.no_progress and sys.stdout.isatty()
    if args.resume:
        trainer = Trainer.resume(args.out, data, epochs=args.epochs, progress=progress, echo=echo)
        given = load_blueprint(args.blueprint).blueprint.name
        if given != trainer.blueprint["name"]:
            raise CommandError(
                f"--resume: {args.out} trains blueprint '{trainer.blueprint['name']}', not '{given}' ({args.blueprint})"
            )
        echo(f"resuming {args.out} after epoch {trainer.epoch} of {trainer.config.epochs}")
    else:
        splits = None
        if args.split_files:
            if len(args.split_files) not in (2, 3):
                raise CommandError("--split-files takes TRAIN VALID [TEST]")
            splits = data.split_from_files(*args.split_files)
        trainer = Trainer(
            args.blueprint,
            data,
            _config(args),
            args.out,
            splits=splits,
            progress=progress,
            echo=echo,
        )
    cfg, splits = trainer.config, trainer.splits
    echo(
        f"{trainer.blueprint['name']}: {sum(p.numel() for p in trainer.potential.parameters())} weights; "
        f"{data.source}: {len(splits.train)} train / {len(splits.valid)} valid / {len(splits.test)} test "
        f"structures in {len(trainer.train_batches)} batches of <= {cfg.atoms_per_batch} atoms"
    )
    result = trainer.fit()
    if not distributed.is_main():
        return EXIT_OK
    echo(
        f"best epoch {result.best_epoch} of {result.epochs}; checkpoints {result.best} and {result.last}"
    )
    out.print(
        metrics_table(
            f"validation (epoch {result.best_epoch}, averaged weights)", _best_metrics(result)
        )
    )
    if splits.test:
        potential = load_potential(result.best).to(cfg.device)
        batches = [
            b.to(device=cfg.device)
            for b in data.batches(
                splits.test, cfg.atoms_per_batch, trainer.train_batches[0].positions.dtype
            )
        ]
        metrics, _ = evaluate(potential, batches)
        out.print(metrics_table(f"test ({len(splits.test)} structures)", metrics.compute()))
    return EXIT_OK


def _best_metrics(result) -> dict[str, float]:
    from geocompose.train import load_checkpoint

    return dict(load_checkpoint(result.best).get("metrics") or {})
