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

``--resume`` continues with the checkpoint's settings: an option given with another value
than the checkpoint's, or a blueprint whose content differs from the one it trained, is
refused (exit 2, naming it) unless ``--override`` is given; overrides are printed and
appended to ``OUT/overrides.jsonl``.

Under ``torchrun`` it trains data-parallel, one process per GPU (or CPU processes over
gloo); only rank 0 prints and writes::

    torchrun --standalone --nproc_per_node 2 -m geocompose train BLUEPRINT DATA --device cuda
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from rich.table import Table

from geocompose.cli.common import EXIT_OK, CommandError, console
from geocompose.compiler import load as load_blueprint
from geocompose.data.dataset import Dataset, Splits
from geocompose.train import (
    TrainConfig,
    Trainer,
    distributed,
    evaluate,
    load_checkpoint,
    load_potential,
)
from geocompose.train.resume import BLUEPRINT, OVERRIDES_NAME, Change, ResumeConflict
from geocompose.train.learning_rate import E3NN_LR, TORCH_LR
from geocompose.train.config import STRESS_WEIGHT
from geocompose.train.schedule import SCHEDULES

__all__ = [
    "add_arguments",
    "add_config_arguments",
    "config_from_args",
    "metrics_table",
    "read_data",
    "run",
]

DEFAULTS = TrainConfig()
FLAGS = {"atoms_per_batch": "--batch-atoms", "edges_per_batch": "--batch-edges"}
"""Options whose flag is not ``--`` + the TrainConfig field with dashes."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("blueprint", metavar="BLUEPRINT", help="blueprint YAML file")
    parser.add_argument(
        "data", metavar="DATA", help="reference data (extxyz, or any file ASE reads)"
    )
    parser.add_argument("--out", default="run", help="output directory (default: %(default)s)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument(
        "--init",
        metavar="CHECKPOINT",
        help="start from this checkpoint's trained weights (same species and architecture)",
    )
    parser.add_argument(
        "--freeze",
        nargs="+",
        metavar="NAME",
        help="do not train these blocks (blueprint paths as `geocompose info` shows them, "
        "e.g. embedding interactions[0]#1)",
    )
    parser.add_argument(
        "--override",
        action="store_true",
        help="with --resume: continue with options or a blueprint that differ from the "
        "checkpoint's (recorded in OUT/overrides.jsonl)",
    )
    add_config_arguments(parser)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that make a TrainConfig, the data keys and the split (also read by
    ``geocompose study``, whose runs share them)."""
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
    run.add_argument(
        "--lr",
        type=float,
        help=f"initial learning rate, AdamW ({E3NN_LR:g} for models with e3nn weights, else {TORCH_LR:g})",
    )
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
        "--stress-weight",
        type=float,
        help=f"stress weight ({STRESS_WEIGHT:g} when every structure is periodic with a stress, else 0)",
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
    other.add_argument("--device", help=f"torch device ({DEFAULTS.device})")
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


def _given(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line, and only those."""
    return {
        f.name: getattr(args, f.name)
        for f in fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the options describe (defaults where not given)."""
    values = _given(args)
    config = TrainConfig(**values)
    if config.epochs < 1 or config.atoms_per_batch < 1 or config.edges_per_batch < 0:
        raise CommandError("--epochs, --batch-atoms and --batch-edges must be positive")
    if config.lr is not None and config.lr <= 0:
        raise CommandError(f"--lr must be positive; got {config.lr}")
    return config


def _flag(name: str) -> str:
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def _describe(change: Change, blueprint: str) -> str:
    """A change as the command line names it."""
    if change.name == BLUEPRINT:
        return (
            f"{blueprint} differs at {change.path} "
            f"({change.saved!r} in the checkpoint, now {change.given!r})"
        )
    return f"{_flag(change.name)} {change.given!r} (the checkpoint's: {change.saved!r})"


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
    if args.resume and (args.init or args.freeze):
        raise CommandError("--init and --freeze start a new run; --resume continues OUT/last.pt")
    if args.override and not args.resume:
        raise CommandError("--override goes with --resume (a new run has nothing to override)")
    if args.resume:
        trainer = _resume(args, data, progress, echo)
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
            config_from_args(args),
            args.out,
            splits=splits,
            progress=progress,
            echo=echo,
        )
    cfg, splits = trainer.config, trainer.splits
    if cfg.init:
        echo(
            f"starting from {cfg.init}"
            + (f"; frozen: {', '.join(trainer.frozen)}" if trainer.frozen else "")
        )
    echo(
        f"{trainer.blueprint['name']}: {sum(p.numel() for p in trainer.potential.parameters())} weights; "
        f"{data.source}: {len(splits.train)} train / {len(splits.valid)} valid / {len(splits.test)} test "
        f"structures in {_batches(trainer)}; lr {cfg.lr:g}"
    )
    if trainer.judged_on == "train":
        echo(
            "no validation split (--valid-fraction 0): best.pt, the schedule and early "
            "stopping judge the training structures, and so do the 'valid' columns"
        )
    result = trainer.fit()
    if not distributed.is_main():
        return EXIT_OK
    echo(
        f"best epoch {result.best_epoch} of {result.epochs}; checkpoints {result.best} and {result.last}"
    )
    judged = (
        "validation"
        if trainer.judged_on == "valid"
        else f"training structures, no validation split ({len(splits.train)} structures)"
    )
    title = f"{judged} (epoch {result.best_epoch}, averaged weights)"
    out.print(metrics_table(title, _best_metrics(result)))
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


def _resume(args: argparse.Namespace, data: Dataset, progress: bool, echo) -> Trainer:
    """The run in ``--out`` continued, refusing given options that differ (exit 2)."""
    given = load_blueprint(args.blueprint).blueprint
    state = load_checkpoint(f"{args.out}/last.pt")
    if given.name != state["blueprint"]["name"]:
        raise CommandError(
            f"--resume: {args.out} trains blueprint '{state['blueprint']['name']}', not '{given.name}' ({args.blueprint})"
        )
    if args.split_files:
        files = data.split_from_files(*args.split_files)
        saved = Splits(**{k: list(v) for k, v in state["splits"].items()})
        if files != saved:
            raise CommandError(
                f"--resume: --split-files {' '.join(args.split_files)} give other splits than "
                f"{args.out}'s checkpoint; start a new run for another split"
            )
    config_from_args(args)  # the given values are checked as for a new run
    settings = _given(args)
    epochs = settings.pop("epochs", None)
    try:
        return Trainer.resume(
            args.out,
            data,
            epochs=epochs,
            progress=progress,
            echo=echo,
            settings=settings,
            blueprint=given,
            override=args.override,
        )
    except ResumeConflict as err:
        listed = "; ".join(_describe(c, args.blueprint) for c in err.changes)
        advice = (
            "the checkpoint stores its splits; start a new run for another split"
            if err.fixed
            else f"pass --override to continue with them (recorded in {args.out}/{OVERRIDES_NAME})"
        )
        raise CommandError(
            f"--resume: differs from {args.out}/last.pt: {listed}; {advice}"
        ) from None


def _batches(trainer: Trainer) -> str:
    """How the training structures were batched, the truth about the atom cap included."""
    cap = trainer.config.atoms_per_batch
    batches = trainer.train_batches
    over = [b.num_atoms for b in batches if b.num_atoms > cap]
    if not over:
        return f"{len(batches)} batches of <= {cap} atoms"
    # A structure larger than the cap cannot be split: it forms a batch of its own.
    others = len(batches) - len(over)
    rest = f"; the other {others} hold <= {cap}" if others else ""
    return (
        f"{len(batches)} batches: {len(over)} hold one structure larger than the "
        f"--batch-atoms cap of {cap} (up to {max(over)} atoms){rest}"
    )


def _best_metrics(result) -> dict[str, float]:
    return dict(load_checkpoint(result.best).get("metrics") or {})
