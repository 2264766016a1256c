"""geocompose.train.allocator: glibc's malloc keeps freed memory for the next step,
unless the user chose an allocator or tuned malloc; the trainer applies it."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from geocompose.train import allocator

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

# In a fresh interpreter (without torch, whose own allocations would blur it): allocate and free 16 MiB through malloc, then report the free
# bytes glibc holds in its heap (mallinfo2's fordblks). By default a block that size is
# mmapped and unmapped on free (nothing kept); kept, it stays in the heap for reuse.
PROBE = """
import ctypes, importlib.util, sys
spec = importlib.util.spec_from_file_location("allocator", sys.argv[2])  # stdlib only
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
applied = module.keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
block = libc.malloc(16 << 20)
ctypes.memset(block, 1, 16 << 20)  # touch every page
libc.free(block)
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc.mallinfo2.restype = Info
print(applied, libc.mallinfo2().fordblks)
"""


def probe(mode: str, env: dict[str, str]) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode, allocator.__file__],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    return out[0] == "True", int(out[1])


def clean_env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("LD_PRELOAD", None)
    env.pop("GLIBC_TUNABLES", None)
    return env


@glibc
def test_freed_memory_stays_in_the_process_for_reuse():
    applied, kept = probe("keep", clean_env())
    assert applied
    assert kept >= 16 << 20
    applied, kept = probe("default", clean_env())
    assert not applied
    assert kept < 16 << 20  # glibc's default hands it back


@pytest.mark.parametrize(
    "env",
    [
        {"MALLOC_TRIM_THRESHOLD_": "0"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"},
        {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"},
    ],
)
def test_a_users_own_allocator_choice_is_left_alone(env):
    assert allocator.user_chose_allocator(env)
    assert not allocator.user_chose_allocator({"PATH": "/usr/bin"})


def test_the_trainer_applies_it(monkeypatch, sample, tmp_path):
    from train_cases import tiny_schnet

    from geocompose.train import TrainConfig, Trainer, trainer

    calls = []
    monkeypatch.setattr(trainer, "keep_freed_memory", lambda: calls.append(1) or True)
    config = TrainConfig(epochs=1, atoms_per_batch=96, valid_fraction=0.2)
    Trainer(tiny_schnet(), sample, config, tmp_path, progress=False, echo=lambda _: None).fit()
    assert calls == [1]
