"""The search engine: Optuna studies over a search space, typed before they cost a trial.

Each trial samples one candidate blueprint from the space (Optuna's parameters are the
knob paths, e.g. ``interactions[0]`` or ``interactions[0].choice[1].repeat``, so a
conditional knob is its own parameter), then

1. type-checks it (:func:`~geocompose.search.sampler.refusal_reason`): an ill-typed
   candidate is pruned at once, reason in the ``refused`` user attribute, no weights built;
2. verifies its symmetry claims (:func:`geocompose.verification.verify`): a failing exact
   claim is pruned as ``rejected`` (never ranked), the worst measured error is kept;
3. trains it for ``budget_epochs`` on the data set and returns the objectives
   (all minimised): validation error (forces MAE, else the best validation loss),
   parameter count and inference latency in ms (median of forward + forces calls
   on the first structure of the data set).

Multi-objective NSGA-II by default; ``sampler="tpe"`` optimises the validation error
alone and prunes with a :class:`optuna.pruners.MedianPruner` on the per-epoch
validation error (the trainer is stepped one epoch at a time by raising its
``config.epochs``; its schedule still spans the whole budget).

When the trials cover the space (``size <= trials``) the designs no trial has tried
yet are enqueued first, so a small space is searched exhaustively and without repeats;
for a larger finite space the sampler's random start (NSGA-II's first population of 50,
TPE's 10 startup trials) is drawn the same way, in a seeded random order. Later trials
may still repeat a design: a repeat reuses the earlier verdict and costs no training,
but counts as a trial. Each trained trial's blueprint is written to
``OUT/trials/trial_NNNN.yaml`` as soon as it finishes.

Storage (:mod:`~geocompose.search.storage`) is an Optuna journal file
``OUT/search.journal`` (K worker processes on one machine) or any RDB URL (many
machines, each running this command with its own ``--out``; heartbeats fail the trials
of workers that died). Workers die with the command and stop cleanly on SIGTERM or
Ctrl-C (:mod:`~geocompose.search.processes`); one search runs on a directory at a time.
Re-running continues the study: finished trials (complete or pruned) are kept, a trial
a killed run left RUNNING is marked FAIL and its design re-enqueued once
(:mod:`~geocompose.search.trials`), and trials run until ``trials`` have finished,
counting every worker on every machine. The untried designs are enqueued by whichever
command finds them untried; two commands starting at the same instant on one RDB may
both enqueue a design, and the second trial of it is then a repeat (no training).

Example::

    from geocompose.search import read_space
    from geocompose.search.engine import run_search
    study = run_search(read_space("examples/search-space.yaml"), "cu.extxyz", trials=8, out="search")
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

from geocompose.search import objectives
from geocompose.search.config import OBJECTIVES, SearchConfig, SearchError, objective_names
from geocompose.search.designs import OptunaSuggester, enqueue_untried
from geocompose.search.processes import Interrupts, RunLock, Workers, interrupts
from geocompose.search.results import write_blueprint
from geocompose.search.sampler import refusal_reason
from geocompose.search.space import Space, read_space
from geocompose.search.storage import journal_path, open_study, repair_journal, shared
from geocompose.search.trials import recover, run_trials

__all__ = [
    "OBJECTIVES",
    "SearchConfig",
    "SearchError",
    "WorkerJob",
    "open_study",
    "run_search",
    "run_worker",
]

ENUMERATE_UP_TO = 10_000
"""Finite spaces up to this size are drawn without replacement (see :func:`run_search`)."""


# -- one trial ------------------------------------------------------------------------
def _objective(trial, space: Space, data, cfg: SearchConfig, out: Path):
    import optuna

    candidate = space.sample(OptunaSuggester(trial))
    trial.set_user_attr("blueprint", candidate)
    reason = refusal_reason(candidate)
    if reason is not None:
        trial.set_user_attr("refused", reason)
        raise optuna.TrialPruned(reason)
    previous = _same_params(trial)
    if previous is not None:
        # Samplers repeat themselves on small spaces: a verdict is not bought twice.
        for key, value in previous.user_attrs.items():
            if key != "blueprint":
                trial.set_user_attr(key, value)
        trial.set_user_attr("duplicate_of", previous.number)
        if previous.state.name != "COMPLETE":
            raise optuna.TrialPruned(
                previous.user_attrs.get("rejected", "duplicate of a pruned trial")
            )
        write_blueprint(out / "trials", trial.number, candidate, previous.user_attrs)
        return previous.values if len(previous.values) > 1 else previous.values[0]

    from geocompose.verification import PRECISION_CHECKS, verify

    report = verify(candidate, samples=cfg.verify_samples, seed=cfg.seed)
    # The float64 figures: float32 rows are judged against float32 tolerances instead.
    claimed = [
        c.error
        for c in report.checks
        if c.tolerance is not None and c.error is not None and c.name not in PRECISION_CHECKS
    ]
    trial.set_user_attr("symmetry_error", max(claimed, default=0.0))
    if not report.passed:
        reason = "; ".join(f"{c.name}: {c.error:.2g} > {c.tolerance:.2g}" for c in report.failures)
        trial.set_user_attr("rejected", f"symmetry claim violated: {reason}")
        raise optuna.TrialPruned(reason)

    error, params, latency = objectives.train_and_measure(trial, candidate, data, cfg, out)
    values = {"valid_error": error, "params": params, "latency_ms": latency}
    score = objectives.expressivity_score(candidate, cfg.expressivity) if cfg.expressivity else None
    if score is not None:
        values["expressivity"] = score
    for key, value in values.items():
        trial.set_user_attr(key, value)
    write_blueprint(out / "trials", trial.number, candidate, trial.user_attrs)
    if cfg.sampler == "tpe":
        return error
    return tuple(values[name] for name in objective_names(cfg))


def _same_params(trial):
    from optuna.trial import TrialState

    for other in trial.study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
    ):
        if (
            other.params == trial.params
            and "refused" not in other.user_attrs
            and "pruned_at" not in other.user_attrs
        ):
            return other
    return None


# -- workers --------------------------------------------------------------------------
@dataclass
class WorkerJob:
    """What one worker process needs (pickled to it)."""

    space_file: str
    space_text: str | None
    data: object  # a Dataset, or a path ASE reads
    cfg: SearchConfig
    out: str
    storage: str | None
    target: int  # finished trials the study should have, in total
    limit: int  # trials this worker runs at most
    index: int
    threads: int
    sampler_seed: int


def run_worker(job: WorkerJob, signals: Interrupts | None = None) -> int:
    """Run trials of the job's study (in this process); returns how many it ran.

    Args:
        job: what to run.
        signals: where SIGTERM/SIGINT are held while the study is written.
    """
    import optuna
    import torch

    torch.set_num_threads(job.threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are listed at the end
    space = read_space(job.space_file, text=job.space_text)
    seed = job.sampler_seed + 1000 * job.index  # each worker samples its own stream
    study = open_study(space, job.out, job.storage, job.cfg, seed=seed)
    data = job.data
    if isinstance(data, (str, Path)):
        from geocompose.data.dataset import Dataset

        data = Dataset.from_file(data)
    out = Path(job.out)
    return run_trials(
        study,
        lambda trial: _objective(trial, space, data, job.cfg, out),
        target=job.target,
        limit=job.limit,
        out=out,
        heartbeats=shared(job.storage),
        signals=signals,
    )


def run_search(
    space: Space | str | Path,
    data,
    trials: int,
    workers: int = 1,
    out: str | Path = "search",
    storage: str | None = None,
    budget_epochs: int = 5,
    seed: int = 0,
    sampler: str = "nsga2",
    config: SearchConfig | None = None,
    echo=print,
):
    """Run (or continue) a search until ``trials`` trials have finished.

    Args:
        space: a search space or its YAML path.
        data: a :class:`~geocompose.data.dataset.Dataset` or a path ASE reads.
        trials: finished trials wanted in total (complete + pruned), counting earlier runs.
        workers: processes (spawned) optimising the same study concurrently.
        out: directory for the journal, runs and results.
        storage: an RDB URL (``sqlite:///…``, ``postgresql://…``) or a ``.journal`` path;
            default ``OUT/search.journal``.
        budget_epochs, seed, sampler: shortcuts for the matching ``config`` fields.
        config: every setting (overrides the shortcuts).

    Returns:
        The Optuna study, reloaded after every worker has finished.
    """
    space = space if isinstance(space, Space) else read_space(space)
    cfg = config or SearchConfig(budget_epochs=budget_epochs, seed=seed, sampler=sampler)
    if trials < 1 or workers < 1 or cfg.budget_epochs < 1 or cfg.heartbeat_s < 1:
        raise SearchError("--trials, --workers, --budget and --heartbeat must be at least 1")
    out = Path(out)
    with RunLock(out) as lock, interrupts() as signals:
        return _run_locked(space, data, trials, workers, out, storage, cfg, echo, lock, signals)


def _run_locked(space, data, trials, workers, out, storage, cfg, echo, lock, signals):
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    journal = journal_path(storage, out)
    if journal is not None and repair_journal(journal):
        echo(f"dropped the last line of {journal}: a killed write left it incomplete")
    study = open_study(space, out, storage, cfg)
    if not shared(storage):  # on an RDB, heartbeats find dead workers' trials instead
        retried = recover(study, out)
        if retried:
            echo(
                f"marked {len(retried)} trial(s) a killed run (or a stopped one) left "
                f"unfinished as failed; re-trying their designs: {retried}"
            )
    finished = len(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    )
    todo = max(0, trials - finished)
    if todo and space.size <= ENUMERATE_UP_TO:
        # Waiting trials will run; running ones are other machines' (locally, recover()
        # has failed and re-enqueued them): neither leaves room for a new design.
        held = (TrialState.WAITING, TrialState.RUNNING)
        fresh = todo - len(study.get_trials(deepcopy=False, states=held))
        if space.size <= trials:  # the budget covers the space: all of it, once
            enqueue_untried(study, space, fresh)
        else:  # the sampler's random start, drawn without replacement
            start = 50 if cfg.sampler == "nsga2" else 10  # NSGA-II population; TPE startup
            enqueue_untried(
                study, space, min(fresh, start - len(study.trials)), shuffle=cfg.seed + finished
            )
    if todo == 0:
        echo(f"{finished} trial(s) already finished; nothing to run")
        return study
    workers = min(workers, todo)
    shares = [todo // workers + (i < todo % workers) for i in range(workers)]
    threads = max(1, (os.cpu_count() or 1) // workers)
    text = Path(space.file).read_text() if Path(space.file).is_file() else None
    jobs = [
        WorkerJob(
            space.file,
            text,
            data,
            copy.deepcopy(cfg),
            str(out),
            storage,
            target=trials,
            limit=n,
            index=i,
            threads=threads,
            sampler_seed=cfg.seed + finished,
        )
        for i, n in enumerate(shares)
    ]
    echo(f"running {todo} trial(s) ({finished} finished before) on {workers} worker(s)")
    if workers == 1:
        run_worker(jobs[0], signals)
    else:
        pool = Workers(out, lock)
        try:
            with signals.raising():
                pool.start(jobs)
                codes = pool.wait()
        except BaseException:  # SIGTERM or Ctrl-C: each worker re-enqueues its trial
            pool.stop()
            raise
        bad = [code for code in codes if code != 0]
        if bad:
            echo(f"{len(bad)} worker(s) exited with codes {bad}; re-run the command to continue")
    return open_study(space, out, storage, cfg)
