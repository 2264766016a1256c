"""How workers take trials from a study so that none is lost and none is run twice.

* A worker runs trials one at a time until the study has its ``target`` finished
  (complete or pruned) trials, counting every worker on every machine, or until it has
  run its own ``limit``. When the only trials left are running in other workers it
  stops (journal: they are its siblings on this machine) or, on a storage with
  heartbeats, waits and fails the trials of workers that died.
* Two workers may ask for a trial at the same moment when one is left: the one with the
  higher trial number sees ``target`` trials ahead of it (finished, running or waiting),
  marks itself ``surplus`` and ends at once, unscored; results ignore such trials.
* A trial whose worker was stopped (SIGTERM, Ctrl-C: ``interrupted``) or killed (left
  RUNNING, found by the next run on that directory: ``killed``; or failed for a stale
  heartbeat) is FAIL and its design is enqueued again exactly once, as a trial whose
  ``retry_of`` names it. A worker whose trial was failed for a stale heartbeat while
  it still ran (too loaded to send one) drops its result. The rule depends only on
  the study's state, so :func:`recover` may run again after a kill in the middle of it.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from geocompose.search.designs import trial_params
from geocompose.search.processes import Interrupts
from geocompose.search.results import blueprint_path, remove_partial_blueprints

__all__ = ["Surplus", "discard_outputs", "recover", "retry", "run_trials"]


class Surplus(Exception):
    """A trial started after the study's last one had been taken by another worker."""


def _states(study) -> Counter:
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def _is_surplus(trial, target: int) -> bool:
    from optuna.trial import TrialState

    held = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    trials = trial.study.get_trials(deepcopy=False, states=held)
    return sum(t.number < trial.number for t in trials) >= target


def retry(study, number: int) -> int | None:
    """Enqueue the design of the failed trial ``number`` again, unless some trial already
    retries it; returns the new trial's number (None when it was retried before)."""
    trials = study.get_trials(deepcopy=False)
    if any(t.user_attrs.get("retry_of") == number for t in trials):
        return None
    failed = next(t for t in trials if t.number == number)
    # An enqueued trial holds its values as fixed params until they are suggested;
    # a trial killed before it drew anything is retried as a fresh draw.
    study.enqueue_trial(trial_params(failed), user_attrs={"retry_of": number}, skip_if_exists=False)
    return max(t.number for t in study.get_trials(deepcopy=False))


def discard_outputs(out: Path, number: int) -> None:
    """Remove what a trial that did not finish left in ``out`` (its partial run, and a
    blueprint written just before it was killed)."""
    shutil.rmtree(out / "runs" / f"trial_{number:04d}", ignore_errors=True)
    blueprint_path(out / "trials", number).unlink(missing_ok=True)


def recover(study, out: Path) -> list[int]:
    """After a killed run on this directory (every worker of it gone: the run lock says
    so): mark its RUNNING trials FAIL (``killed``), re-enqueue each killed or
    interrupted trial that has no retry yet, and clear their partial outputs.

    Returns:
        The numbers of the trials re-enqueued now.
    """
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        why = "left running by a killed run"
        study._storage.set_trial_user_attr(trial._trial_id, "killed", why)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    retried = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if "killed" in trial.user_attrs or "interrupted" in trial.user_attrs:
            discard_outputs(out, trial.number)
            if retry(study, trial.number) is not None:
                retried.append(trial.number)
    remove_partial_blueprints(out / "trials")
    return retried


def run_trials(
    study,
    objective: Callable,
    target: int,
    limit: int,
    out: Path,
    heartbeats: bool,
    poll_s: float = 1.0,
    signals: Interrupts | None = None,
) -> int:
    """Run trials of ``study`` until it has ``target`` finished ones or this worker has
    run ``limit`` (see the module docstring); returns how many this worker ran.

    Raises:
        KeyboardInterrupt: SIGINT or SIGTERM (``signals`` holds them while Optuna
            writes the study); the trial in progress is FAIL (``interrupted``), its
            design re-enqueued and its partial outputs removed.
    """
    import optuna

    signals = signals or Interrupts()  # none installed: nothing is ever held
    ran = 0
    while ran < limit:
        signals.check()  # one that came while Optuna wrote the study
        states = _states(study)
        finished = states["COMPLETE"] + states["PRUNED"]
        if finished >= target:
            break
        if not states["WAITING"] and finished + states["RUNNING"] >= target:
            if not heartbeats:
                break  # the rest runs in sibling workers; a re-run recovers any that die
            time.sleep(poll_s)
            with warnings.catch_warnings():  # "experimental" in Optuna since 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)  # dead workers' trials, re-enqueued
            continue
        current: list[int] = []

        def guarded(trial):
            current.append(trial.number)
            if _is_surplus(trial, target):
                trial.set_user_attr("surplus", True)
                raise Surplus(f"trial {trial.number}: the study already has its {target} trials")
            try:
                with signals.raising():
                    return objective(trial)
            except optuna.TrialPruned:
                raise
            except KeyboardInterrupt:
                trial.set_user_attr("interrupted", "stopped by SIGTERM or Ctrl-C")
                raise
            except Exception as err:  # recorded on the trial; Optuna marks it FAIL, we go on
                trial.set_user_attr("error", f"{type(err).__name__}: {err}")
                raise

        try:
            study.optimize(guarded, n_trials=1, catch=(Exception,))
        except KeyboardInterrupt:
            if current and _state(study, current[0]) == "FAIL":
                discard_outputs(out, current[0])
                retry(study, current[0])
            raise
        except Exception:
            if not current or _state(study, current[0]) != "FAIL":
                raise
            # Optuna could not record the result: another worker had found this one's
            # heartbeat stale (a machine too loaded to send it), failed the trial and
            # re-enqueued its design. The result is dropped; the retry stands.
            discard_outputs(out, current[0])
        ran += 1
    signals.check()
    return ran


def _state(study, number: int) -> str:
    return next(t.state.name for t in study.get_trials(deepcopy=False) if t.number == number)
