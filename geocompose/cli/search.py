"""geocompose search: multi-objective architecture search over a search space (Optuna).

Each trial samples a candidate, type-checks it (ill-typed: pruned, never built),
verifies its symmetry claims (violated: rejected, never ranked), trains it for
``--budget`` epochs and is scored on validation error (forces MAE), parameter count and
inference latency. Results land in ``--out``: ``search.journal`` (the study),
``trials/trial_NNNN.yaml`` (every trained blueprint), ``pareto.png`` and
``runs/`` (checkpoints). Each trial's blueprint is written as soon as it finishes.
Re-running the same command continues the study (a killed run loses nothing finished;
a trial it left unfinished is marked failed and its design re-tried once); SIGTERM or
Ctrl-C stops the workers cleanly (exit 130). With ``--storage postgresql://...`` any
number of machines run the same command (each with its own ``--out``) until the
study has ``--trials`` finished trials; ``--best`` prints only the chosen blueprint's
YAML::

    geocompose search examples/search-space.yaml geocompose/data/examples/cu_emt_small.extxyz \\
        --trials 8 --workers 2 --budget 2 --structures 60 --out search-demo
    geocompose search examples/search-space.yaml DATA --trials 8 --out search-demo --best > best.yaml

Needs the ``search`` extra (``pip install geocompose[search]``: Optuna).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from geocompose.cli.common import EXIT_OK, CommandError, console

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("space", help="search-space YAML (a blueprint with choices)")
    parser.add_argument("data", help="reference data (extxyz or anything ASE reads)")
    parser.add_argument(
        "--trials", type=int, default=20, help="finished trials wanted, counting earlier runs"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    parser.add_argument("--budget", type=int, default=5, help="training epochs per trial")
    parser.add_argument("--out", default="search", help="output directory (default: search)")
    parser.add_argument(
        "--storage",
        help="shared Optuna RDB URL (sqlite:///..., postgresql://...) "
        "for many machines; default OUT/search.journal",
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=60,
        metavar="SECONDS",
        help="with --storage: each worker's heartbeat period; a trial silent for twice "
        "as long is failed and re-tried elsewhere (default: 60)",
    )
    parser.add_argument(
        "--sampler",
        choices=("nsga2", "tpe"),
        default="nsga2",
        help="nsga2: error, params, latency; tpe: error only, with median pruning",
    )
    parser.add_argument("--structures", type=int, help="use only the first N structures of DATA")
    parser.add_argument("--atoms-per-batch", type=int, default=256)
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate of every trial (default: each design's own, by its weights)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--expressivity",
        default="counterexamples",
        metavar="SUITE",
        help="expressivity suite scored per trial (quick protocol); 'none' skips it",
    )
    parser.add_argument(
        "--rank-expressivity",
        action="store_true",
        help="make the expressivity score a 4th objective (maximised)",
    )
    parser.add_argument(
        "--best", action="store_true", help="print only the chosen blueprint (YAML)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise CommandError(
            "geocompose search needs Optuna: pip install 'geocompose[search]'"
        ) from None
    from geocompose.data.dataset import Dataset
    from geocompose.search.config import SearchConfig
    from geocompose.search.engine import run_search
    from geocompose.search.results import (
        best,
        blueprint_yaml,
        export_blueprints,
        pareto_table,
        plot_front,
        summary,
        trial_rows,
    )
    from geocompose.search.space import read_space

    out = console(sys.stderr if args.best else None)
    echo = (lambda *a: out.print(*a)) if not args.best else (lambda *a: None)
    space = read_space(args.space)
    data = Dataset.from_file(args.data)
    if args.structures:
        data = data.subset(range(min(args.structures, len(data))))
    config = SearchConfig(
        budget_epochs=args.budget,
        sampler=args.sampler,
        seed=args.seed,
        atoms_per_batch=args.atoms_per_batch,
        lr=args.lr,
        expressivity=None if args.expressivity == "none" else args.expressivity,
        expressivity_objective=args.rank_expressivity,
        heartbeat_s=args.heartbeat,
    )
    start = time.perf_counter()
    study = run_search(
        space,
        data,
        args.trials,
        workers=args.workers,
        out=args.out,
        storage=args.storage,
        config=config,
        echo=echo,
    )
    elapsed = time.perf_counter() - start
    rows = trial_rows(study)
    directory = Path(args.out)
    chosen = best(rows)
    if args.best:
        if chosen is None:
            raise CommandError(f"no trial of '{study.study_name}' has finished training yet")
        print(blueprint_yaml(chosen.blueprint), end="")
        return EXIT_OK
    # Each trial wrote its own when it finished; this adds those other machines trained.
    export_blueprints(rows, directory / "trials")
    out.print(f"{study.study_name}: {len(rows)} trials ({summary(rows)}) in {elapsed:.0f} s")
    for row in rows:
        if row.state in ("refused", "rejected", "failed"):
            out.print(
                f"  trial {row.number} {row.state}: {row.reason}", markup=False, highlight=False
            )
    if chosen is None:
        out.print("no trial finished training; nothing to rank")
        return EXIT_OK
    out.print(pareto_table(rows))
    plot = plot_front(rows, directory / "pareto.png", title=study.study_name)
    out.print(f"blueprints: {directory / 'trials'}/trial_NNNN.yaml; plot: {plot}")
    out.print(
        f"best (lowest validation error on the front): trial {chosen.number}, {chosen.describe()} "
        f"-> {directory / 'trials' / f'trial_{chosen.number:04d}.yaml'}"
    )
    return EXIT_OK
