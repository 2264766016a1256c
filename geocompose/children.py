"""Child processes that die with the process that started them, however it dies.

A child is started as ``PYTHON -c BOOTSTRAP PARENT_PID ARGS...`` (:func:`bootstrap`
writes the code). Before anything is imported (importing torch takes seconds, long
enough for a parent to die first), the child asks the kernel
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``, Linux) to be killed when its parent dies; off
Linux a daemon thread watches the parent's pid instead. It exits at once with
:data:`PARENT_GONE` if the parent is already gone, and only then runs its module or
file. The bootstrap uses the standard library alone, so ``PYTHON`` may be any Python
3, one without geocompose included (a peer code's own virtual environment).

Linux sends the signal when the *thread* that started the child exits: start children
from a thread that lives as long as they should (the main thread, as every command does).

Search workers and the verifier's remote calculators both start their children this way;
this module sits below every layer so that both can.
"""

from __future__ import annotations

import os

__all__ = ["PARENT_GONE", "PR_SET_PDEATHSIG", "bootstrap", "command"]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_GONE = 0
"""A child's exit code when its parent died before it started: nothing went wrong in
the child, and the parent is not there to read it anyway."""

_ARM = f"""\
import os, sys
if sys.platform.startswith("linux"):
    import ctypes, signal
    _armed = ctypes.CDLL(None).prctl({PR_SET_PDEATHSIG}, signal.SIGKILL, 0, 0, 0) == 0
else:
    _armed = False
if os.getppid() != int(sys.argv[1]):
    os._exit({PARENT_GONE})
if not _armed:
    import threading, time
    def _watch(parent=int(sys.argv[1])):
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit({PARENT_GONE})
    threading.Thread(target=_watch, daemon=True, name="parent-watch").start()
import runpy
"""


def bootstrap(*, module: str | None = None, path: str | None = None) -> str:
    """The code a child runs with ``python -c``: the parent-death request, then
    ``module`` (``python -m``-style) or the file at ``path``, as ``__main__``.

    The child's ``sys.argv`` is ``[its file, PARENT_PID, ARGS...]``.
    """
    if (module is None) == (path is None):
        raise ValueError("bootstrap: give exactly one of module= or path=")
    if module is not None:
        run = f'runpy.run_module("{module}", run_name="__main__", alter_sys=True)'
    else:
        run = f'sys.argv[0] = {str(path)!r}\nrunpy.run_path({str(path)!r}, run_name="__main__")'
    return _ARM + run + "\n"


def command(python: str, code: str, *args: str) -> list[str]:
    """The argv that starts ``code`` (a :func:`bootstrap`) under ``python`` as a child
    of this process."""
    return [python, "-c", code, str(os.getpid()), *args]
