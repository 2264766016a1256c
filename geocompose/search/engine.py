"""The search engine: Optuna studies over a search space, typed before they cost a trial.

Each trial samples one candidate blueprint from the space (Optuna's parameters are the
knob paths, e.g. ``interactions[0]`` or ``interactions[0].choice[1].repeat``, so a
conditional knob is its own parameter), then

1. type-checks it (:func:`~geocompose.search.sampler.refusal_reason`): an ill-typed
   candidate is pruned at once, reason in the ``refused`` user attribute, no weights built;
2. verifies its symmetry claims (:func:`geocompose.verify.verify`): a failing exact
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
but counts as a trial. Storage is an Optuna journal file
``OUT/search.journal`` (K processes on one machine) or any RDB URL (many machines;
heartbeats fail trials of dead workers). Re-running continues the study: finished
trials (complete or pruned) are kept, trials a killed run left RUNNING are marked FAIL
and their parameters re-enqueued, and only ``trials - finished`` new trials run.

Example::

    from geocompose.search import read_space
    from geocompose.search.engine import run_search
    study = run_search(read_space("examples/search-space.yaml"), "cu.extxyz", trials=8, out="search")
"""

from __future__ import annotations

import copy
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

from geocompose.errors import GeocomposeError
from geocompose.search import objectives
from geocompose.search.designs import OptunaSuggester, enqueue_untried, trial_params
from geocompose.search.objectives import objective_names
from geocompose.search.sampler import refusal_reason
from geocompose.search.space import Space, read_space

__all__ = [
    "OBJECTIVES",
    "SearchConfig",
    "SearchError",
    "open_study",
    "run_search",
]

OBJECTIVES = ("valid_error", "params", "latency_ms")
"""The objectives of a multi-objective study, in order, all minimised (plus
``expressivity``, maximised, with ``SearchConfig.expressivity_objective``)."""

ENUMERATE_UP_TO = 10_000
"""Finite spaces up to this size are drawn without replacement (see :func:`run_search`)."""


class SearchError(GeocomposeError):
    """A search that cannot start (mismatched study, bad settings)."""


@dataclass
class SearchConfig:
    """How each trial is judged (the same for every worker)."""

    budget_epochs: int = 5
    sampler: str = "nsga2"  # or "tpe" (single objective, median pruning)
    seed: int = 0
    atoms_per_batch: int = 256
    lr: float = 1e-3
    verify_samples: int = 1
    latency_repeats: int = 5
    expressivity: str | None = "counterexamples"  # suite scored per trial; None: skip
    expressivity_objective: bool = False  # rank by it too (a 4th objective, maximised)


# -- storage and study ----------------------------------------------------------------
def _storage(storage: str | None, out: Path):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(out / "search.journal")))
    if storage.endswith(".journal"):
        return JournalStorage(JournalFileBackend(storage))
    # Heartbeats let any machine fail the trials of a worker that died.
    return optuna.storages.RDBStorage(storage, heartbeat_interval=60, grace_period=180)


def _study_name(space: Space) -> str:
    template = space.template if isinstance(space.template, dict) else {}
    name = template.get("name")
    return name if isinstance(name, str) else Path(space.file).stem


def open_study(
    space: Space,
    out: str | Path,
    storage: str | None = None,
    config: SearchConfig | None = None,
    seed: int | None = None,
):
    """The study of ``space`` in ``storage`` (created when absent)."""
    import optuna

    config = config or SearchConfig()
    sampler, seed = config.sampler, config.seed if seed is None else seed
    names = objective_names(config)
    directions = ["maximize" if name == "expressivity" else "minimize" for name in names]
    if sampler == "nsga2":
        chosen = optuna.samplers.NSGAIISampler(seed=seed)
    elif sampler == "tpe":
        chosen = optuna.samplers.TPESampler(seed=seed)
    else:
        raise SearchError(f"sampler must be 'nsga2' or 'tpe'; got {sampler!r}")
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
        if sampler == "tpe"
        else None
    )
    study = optuna.create_study(
        study_name=_study_name(space),
        storage=_storage(storage, Path(out)),
        sampler=chosen,
        pruner=pruner,
        directions=directions,
        load_if_exists=True,
    )
    if len(study.directions) != len(directions):
        raise SearchError(
            f"the study '{study.study_name}' in {storage or Path(out) / 'search.journal'} has "
            f"{len(study.directions)} objective(s); this search has {len(directions)}: {', '.join(names)} "
            "(use another --out)"
        )
    if study.user_attrs.get("space") not in (None, space.template.__repr__()):
        raise SearchError(
            f"the study '{study.study_name}' was run on a different search space; use another --out"
        )
    study.set_user_attr("space", space.template.__repr__())
    study.set_user_attr("objectives", list(names))
    return study


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
        return previous.values if len(previous.values) > 1 else previous.values[0]

    from geocompose.verify import verify

    report = verify(candidate, samples=cfg.verify_samples, seed=cfg.seed)
    claimed = [c.error for c in report.checks if c.tolerance is not None and c.error is not None]
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
def _worker(
    space_file: str,
    space_text: str,
    data,
    cfg: SearchConfig,
    out: str,
    storage: str | None,
    n_trials: int,
    index: int,
    threads: int,
    sampler_seed: int,
) -> None:
    import optuna
    import torch

    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = read_space(space_file, text=space_text)
    study = open_study(space, out, storage, cfg, seed=sampler_seed + 1000 * index)
    if isinstance(data, (str, Path)):
        from geocompose.data.dataset import Dataset

        data = Dataset.from_file(data)

    def objective(trial):
        try:
            return _objective(trial, space, data, cfg, Path(out))
        except optuna.TrialPruned:
            raise
        except Exception as err:  # recorded on the trial; Optuna marks it FAIL and goes on
            trial.set_user_attr("error", f"{type(err).__name__}: {err}")
            raise

    study.optimize(objective, n_trials=n_trials, catch=(Exception,))


def _recover(study, shared: bool) -> list[int]:
    """Mark trials a killed local run left RUNNING as FAIL and re-enqueue their params."""
    from optuna.trial import TrialState

    if shared:
        return []  # another machine may be running them; heartbeats fail the dead ones
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        # An enqueued trial holds its values as fixed params until they are suggested.
        params = trial_params(trial)
        if params:  # killed before it drew anything: there is nothing to retry
            study.enqueue_trial(params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
        failed.append(trial.number)
    return failed


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
    import optuna
    from optuna.trial import TrialState

    space = space if isinstance(space, Space) else read_space(space)
    cfg = config or SearchConfig(budget_epochs=budget_epochs, seed=seed, sampler=sampler)
    if trials < 1 or workers < 1 or cfg.budget_epochs < 1:
        raise SearchError("--trials, --workers and --budget must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(space, out, storage, cfg)
    retried = _recover(study, shared=storage is not None and not storage.endswith(".journal"))
    if retried:
        echo(
            f"marked {len(retried)} trial(s) a killed run left running as failed; re-sampling them: {retried}"
        )
    finished = len(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    )
    todo = max(0, trials - finished)
    if todo and space.size <= ENUMERATE_UP_TO:
        fresh = todo - len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
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
    args = [
        (
            space.file,
            text,
            data,
            copy.deepcopy(cfg),
            str(out),
            storage,
            n,
            i,
            threads,
            cfg.seed + finished,
        )
        for i, n in enumerate(shares)
    ]
    echo(f"running {todo} trial(s) ({finished} finished before) on {workers} worker(s)")
    if workers == 1:
        _worker(*args[0])
    else:
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_worker, args=a, daemon=False) for a in args]
        for p in processes:
            p.start()
        try:
            for p in processes:
                p.join()
        except BaseException:  # Ctrl-C: stop the workers; their RUNNING trials resume later
            for p in processes:
                p.terminate()
            raise
        bad = [p.exitcode for p in processes if p.exitcode != 0]
        if bad:
            echo(f"{len(bad)} worker(s) exited with codes {bad}; re-run the command to continue")
    return open_study(space, out, storage, cfg)
