"""Keep freed memory in the process for the next training step (glibc's malloc).

A training step allocates and frees the same tensors step after step. glibc's default
malloc hands freed memory at the top of its heap back to the kernel once it passes a
trim threshold (and serves large requests by fresh ``mmap``), so the next step page-
faults the same memory in again. On PaiNN's training on 8-molecule ethanol batches
that refaulting was 7 % of the step: 152.7 structures/s by default against 164.0 with
the settings below (benchmarks/train_head_to_head.py's painn pair, one process, 2-core
AMD EPYC, 2026-12-04). The settings: requests up to 32 MiB (glibc's largest ``mmap``
threshold) come from the heap, and up to 1 GiB of freed heap is kept rather than
trimmed. The cost: the process keeps its peak heap for its lifetime, what PyTorch's
CUDA caching allocator does on the GPU anyway.

Nothing is changed where the user already chose: another allocator preloaded
(jemalloc, tcmalloc, mimalloc) or glibc's malloc tuned through the environment.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling for it on 64-bit
TRIM_THRESHOLD = 1024 * 1024 * 1024

_USER_CHOICES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")


def user_chose_allocator(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment preloads another allocator or tunes glibc's malloc."""
    environ = os.environ if environ is None else environ
    preload = environ.get("LD_PRELOAD", "")
    return (
        any(name in environ for name in _USER_CHOICES)
        or "glibc.malloc" in environ.get("GLIBC_TUNABLES", "")
        or any(name in preload for name in _OTHER_ALLOCATORS)
    )


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep freed memory for reuse (see the module docstring).

    Returns:
        True when applied; False on another C library or platform, or where the user
        chose (:func:`user_chose_allocator`).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if user_chose_allocator():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; an explicit threshold also ends glibc's own
    # adjustment of both, which is why both are set.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
