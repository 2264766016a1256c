"""The processes of a search: one run per output directory, workers that die with the
command that started them, and SIGTERM taken like Ctrl-C.

* :class:`RunLock` is an ``flock`` on ``OUT/search.lock``, taken by the command and
  inherited by its workers (one open file description, passed to them), so the kernel
  releases it only when the command and every worker have exited, however they exit. A
  second search on the same directory waits a few seconds (the workers of a killed run
  die in that time) and then refuses; a re-run after a kill therefore never marks
  failed a trial whose worker is still alive.
* Workers run :mod:`geocompose.search.worker` in a session of their own, so a
  terminal's Ctrl-C reaches only the command, which stops them in order. Each is
  started through :func:`geocompose.children.bootstrap`, so it dies with the command
  however the command dies. The job is pickled to the worker's stdin.
* :func:`interrupts` takes SIGTERM like Ctrl-C, as :class:`KeyboardInterrupt`, raised
  only where it is safe (:class:`Interrupts`): the trial in progress is marked failed
  and re-enqueued (:func:`~geocompose.search.trials.run_trials`), and the CLI prints
  one line.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from geocompose.children import bootstrap, command
from geocompose.search.config import SearchError

__all__ = ["BOOTSTRAP", "Interrupts", "RunLock", "Workers", "interrupts"]

LOCK_NAME = "search.lock"
RESEND_S = 0.05
"""How long after an interrupt was lost in a weakref callback it is sent again."""
BOOTSTRAP = bootstrap(module="geocompose.search.worker")
"""What ``python -c`` runs in a worker: the parent-death request first
(:mod:`geocompose.children`), then the worker module."""


class RunLock:
    """The one search running on ``directory`` (see the module docstring).

    Args:
        directory: the search's output directory.
        wait_s: how long to wait for a previous run's workers to exit before refusing.
    """

    def __init__(self, directory: str | Path, wait_s: float = 15.0):
        self.path = Path(directory) / LOCK_NAME
        self.wait_s = wait_s
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise SearchError(
                        f"another geocompose search is running on {self.path.parent} "
                        f"(it holds {self.path}); wait for it to finish or use another --out"
                    ) from None
                time.sleep(0.2)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Interrupts:
    """SIGTERM and SIGINT, taken as :class:`KeyboardInterrupt` only where it is safe.

    Inside :meth:`raising` (a trial's training, the command waiting for its workers)
    the signal raises at once; elsewhere (Optuna writing the study) it is held and
    raised by the next :meth:`check` or :meth:`raising`, so a signal never cuts a
    storage write in half (Optuna's own clean-up then fails). A second signal while
    the first is being handled is ignored.

    Python runs a signal handler between any two bytecodes, also inside a weakref
    callback or a ``__del__`` (the import system's module locks have one), where an
    exception cannot propagate: Python prints it as "Exception ignored" and goes on.
    :meth:`swallowed` takes that case: it prints nothing and sends the signal again,
    so it raises in the interrupted code instead, a moment later.
    """

    def __init__(self):
        self.pending: str | None = None
        self._raising = False

    def handle(self, signum, frame) -> None:
        if self.pending is not None:
            return
        self.pending = signal.Signals(signum).name
        if self._raising:
            raise KeyboardInterrupt(f"signal {self.pending}")

    def swallowed(self, unraisable) -> bool:
        """Whether ``unraisable`` (what :data:`sys.unraisablehook` gets) is this
        handler's interrupt, lost where it was raised; if so, deliver it again."""
        if self.pending is None or unraisable.exc_type is not KeyboardInterrupt:
            return False
        if str(unraisable.exc_value) != f"signal {self.pending}":
            return False
        # Sent again a moment later, from another thread: raised in this hook, or while
        # it starts a thread, the interrupt would be lost again.
        signum, self.pending = signal.Signals[self.pending], None
        resend = threading.Timer(RESEND_S, os.kill, args=(os.getpid(), signum))
        resend.daemon = True
        resend.start()
        return True

    def check(self) -> None:
        """Raise the held signal, if any."""
        if self.pending is not None:
            raise KeyboardInterrupt(f"signal {self.pending}")

    @contextmanager
    def raising(self):
        """A block where a signal raises at once (a held one raises on entry)."""
        self.check()
        self._raising = True
        try:
            yield
        finally:
            self._raising = False


@contextmanager
def interrupts():
    """Within the block, SIGTERM and SIGINT go to the :class:`Interrupts` it yields
    (only the main thread can take signals; elsewhere they are left alone)."""
    handler = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield handler
        return
    previous = {s: signal.signal(s, handler.handle) for s in (signal.SIGTERM, signal.SIGINT)}
    previous_hook = sys.unraisablehook

    def unraisable_hook(unraisable) -> None:
        if not handler.swallowed(unraisable):
            previous_hook(unraisable)

    sys.unraisablehook = unraisable_hook
    try:
        yield handler
    finally:
        sys.unraisablehook = previous_hook
        for signum, action in previous.items():
            signal.signal(signum, action)


class Workers:
    """Worker processes of one run, each given one pickled job.

    Args:
        out: the output directory (named on the workers' command line).
        lock: the run's lock, inherited by every worker.
    """

    def __init__(self, out: Path, lock: RunLock):
        self.out, self.lock = out, lock
        self.processes: list[subprocess.Popen] = []

    def start(self, jobs: list) -> None:
        """One worker per job (started one after another; :meth:`stop` stops those
        started so far if this is interrupted)."""
        for job in jobs:
            process = subprocess.Popen(
                command(sys.executable, BOOTSTRAP, str(self.out)),
                stdin=subprocess.PIPE,
                start_new_session=True,
                pass_fds=(self.lock.fd,),
            )
            self.processes.append(process)
            try:
                process.stdin.write(pickle.dumps(job))
                process.stdin.close()
            except BrokenPipeError:  # it died at once; its exit code says why
                pass

    def wait(self) -> list[int]:
        """Every worker's exit code, once all have exited."""
        return [process.wait() for process in self.processes]

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM to every worker (each fails and re-enqueues its trial); SIGKILL to
        those still running after ``grace_s``."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
