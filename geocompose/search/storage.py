"""Where a study lives: an Optuna journal file (processes on one machine) or an RDB URL
(many machines), and the study of a space in it.

The journal is locked with ``flock`` on ``search.journal.lock`` instead of Optuna's
default symlink lock: the kernel releases an flock when its holder dies, so a
``kill -9`` in the middle of a write never leaves a stale lock for the next run to wait
out (Optuna's lock waits 30 s). A write cut short by a kill leaves a last line without
its newline; :func:`repair_journal` drops it, under the same lock, before a run reads
the journal (Optuna would refuse the whole file once a later line follows it).

RDB storages record a heartbeat per running trial every ``SearchConfig.heartbeat_s``;
a trial whose heartbeat is twice that old is failed by whichever worker notices first
(Optuna's state change is atomic, so exactly one does) and its design is re-enqueued
once by :func:`geocompose.search.trials.retry`.
"""

from __future__ import annotations

import fcntl
import os
import warnings
from pathlib import Path

from geocompose.search.config import SearchConfig, SearchError, objective_names
from geocompose.search.space import Space
from geocompose.search.trials import retry

__all__ = ["FlockLock", "journal_path", "open_study", "repair_journal", "shared"]


class FlockLock:
    """An exclusive ``flock`` on a file, with the acquire/release pair Optuna's journal
    backend calls; released by the kernel if its holder dies."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def shared(storage: str | None) -> bool:
    """Whether ``storage`` is an RDB URL that other machines may use too."""
    return storage is not None and not storage.endswith(".journal")


def journal_path(storage: str | None, out: str | Path) -> Path | None:
    """The journal file of a storage setting (None for an RDB URL)."""
    if shared(storage):
        return None
    return Path(storage) if storage else Path(out) / "search.journal"


def repair_journal(path: Path) -> bool:
    """Cut a last line a killed writer left without its newline; True when one was cut."""
    if not path.is_file():
        return False
    lock = FlockLock(f"{path}.lock")
    lock.acquire()
    try:
        with open(path, "rb+") as handle:
            data = handle.read()
            if not data or data.endswith(b"\n"):
                return False
            handle.truncate(data.rfind(b"\n") + 1)
            return True
    finally:
        lock.release()


def _storage(storage: str | None, out: Path, cfg: SearchConfig):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    journal = journal_path(storage, out)
    if journal is not None:
        journal.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(journal), lock_obj=FlockLock(f"{journal}.lock"))
        return JournalStorage(backend)
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            storage,
            heartbeat_interval=cfg.heartbeat_s,
            grace_period=2 * cfg.heartbeat_s,
            heartbeat_stale_trial_callback=lambda study, trial: retry(study, trial.number),
        )


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
    """The study of ``space`` in ``storage`` (created when absent).

    Raises:
        SearchError: an unknown sampler, or a study of the same name that has other
            objectives or another space.
    """
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
        storage=_storage(storage, Path(out), config),
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
