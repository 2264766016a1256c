"""A search worker process: ``python -c BOOTSTRAP PARENT_PID OUT`` runs this module.

Started by :class:`~geocompose.search.processes.Workers`, never by hand. The bootstrap
armed it to die with its parent before anything was imported
(:mod:`geocompose.children`: a parent killed while writing the job cannot leave it
running); it reads its pickled
:class:`~geocompose.search.engine.WorkerJob` from stdin and runs it. ``OUT`` is only
named on the command line so that a process listing shows which search it serves.

Exit codes: 0 done (or the parent was already gone), 130 stopped by SIGTERM/SIGINT
(its trial marked failed and re-enqueued), 3 an internal error (one line on stderr).
"""

from __future__ import annotations

import pickle
import sys

from geocompose.children import PARENT_GONE
from geocompose.search.processes import interrupts

INTERRUPTED = 130
INTERNAL = 3


def main(argv: list[str]) -> int:
    """Run one worker job read from stdin; returns the exit code."""
    try:
        with interrupts() as signals:
            try:
                job = pickle.load(sys.stdin.buffer)
            except (EOFError, pickle.UnpicklingError):
                return PARENT_GONE  # the parent stopped while it was writing the job
            from geocompose.search.engine import run_worker

            run_worker(job, signals)
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as err:  # a worker has no terminal of its own: one line, not a traceback
        print(f"geocompose search worker: {type(err).__name__}: {err}", file=sys.stderr)
        return INTERNAL
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
