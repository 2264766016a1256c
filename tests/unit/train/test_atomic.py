"""Atomic writes: the final name holds the old file or the new one; temporaries a
killed writer left are found and removed by name, nothing else."""

import os
import stat

import pytest

from geocompose.train.atomic import atomic_write, remove_temporaries, temporaries


def test_a_write_replaces_the_file_with_the_umask_mode(tmp_path):
    path = tmp_path / "deep" / "last.pt"
    old = os.umask(0o022)
    try:
        atomic_write(path, lambda handle: handle.write(b"one"))
        atomic_write(path, lambda handle: handle.write(b"two"))
    finally:
        os.umask(old)
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not list(path.parent.glob(".*.tmp"))


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "last.pt"
    atomic_write(path, lambda handle: handle.write(b"old"))

    def fails(handle):
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fails)
    assert path.read_bytes() == b"old" and not list(tmp_path.glob(".*.tmp"))


def test_only_the_temporaries_of_the_named_files_are_removed(tmp_path):
    left = [tmp_path / ".last.pt.0a1b2c3d4e5f.tmp", tmp_path / ".metrics.csv.ffffffffffff.tmp"]
    kept = [tmp_path / ".other.pt.0a1b2c3d4e5f.tmp", tmp_path / "last.pt"]
    for path in left + kept:
        path.write_bytes(b"x")
    names = ("last.pt", "best.pt", "metrics.csv")
    assert temporaries(tmp_path, names) == sorted(left)
    assert remove_temporaries(tmp_path, names) == sorted(left)
    assert [p.exists() for p in left + kept] == [False, False, True, True]
