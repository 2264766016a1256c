"""Epoch logs: CSV appended across runs; TensorBoard scalars when it is importable."""

import csv
import sys
import types

from geocompose.train.logs import EpochLog


def test_csv_appends_one_header(tmp_path):
    log = EpochLog(tmp_path, tensorboard=False)
    log.write({"epoch": 1, "lr": 0.001, "valid_loss": 0.5})
    log.close()
    again = EpochLog(tmp_path, tensorboard=False)  # a resumed run
    again.write({"epoch": 2, "lr": 0.0005, "valid_loss": 0.25, "new_column": 1.0})
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows == [["epoch", "lr", "valid_loss"], ["1", "0.001", "0.5"], ["2", "0.0005", "0.25"]]


def test_tensorboard_scalars_when_available(tmp_path, monkeypatch):
    calls = []

    class Writer:
        def __init__(self, log_dir):
            calls.append(("dir", log_dir))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def flush(self):
            pass

        def close(self):
            calls.append(("closed",))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = Writer
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    log = EpochLog(tmp_path)
    log.write({"epoch": 3, "valid_forces_mae": 0.1, "train_loss": float("nan")})
    log.close()
    assert calls == [
        ("dir", str(tmp_path / "tensorboard")),
        ("valid/forces_mae", 0.1, 3),
        ("closed",),
    ]


def test_without_tensorboard_only_csv(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    log = EpochLog(tmp_path)
    assert log.writer is None
    log.write({"epoch": 1, "lr": 0.1})
    assert (tmp_path / "metrics.csv").is_file() and not (tmp_path / "tensorboard").exists()


def write_log(path, text: str) -> None:
    path.write_bytes(text.replace("\n", "\r\n").encode())  # as csv.writer ends its lines


def epochs(path) -> list[str]:
    with path.open(newline="") as handle:
        return [r[0] for r in list(csv.reader(handle))[1:]]


def test_a_run_cuts_the_log_back_to_its_checkpoint(tmp_path):
    # Epoch 3's row was written, then the run was killed before its checkpoint, and
    # again mid-way through epoch 4's row: the checkpoint says epoch 2.
    log = tmp_path / "metrics.csv"
    write_log(log, "epoch,lr\n1,0.1\n2,0.05\n3,0.025\n")
    log.write_bytes(log.read_bytes() + b"4,0.01")
    again = EpochLog(tmp_path, after_epoch=2, tensorboard=False)
    assert epochs(log) == ["1", "2"]
    again.write({"epoch": 3, "lr": 0.025})
    assert epochs(log) == ["1", "2", "3"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_line_cut_short_is_dropped_even_when_its_epoch_would_be_kept(tmp_path):
    log = tmp_path / "metrics.csv"
    write_log(log, "epoch,lr\n1,0.1\n")
    log.write_bytes(log.read_bytes() + b"1")  # the start of "12,0.001": not epoch 1
    EpochLog(tmp_path, after_epoch=5, tensorboard=False)
    assert epochs(log) == ["1"]


def test_a_new_run_starts_a_new_log(tmp_path):
    log = tmp_path / "metrics.csv"
    write_log(log, "epoch,old_column\n1,7\n")
    new = EpochLog(tmp_path, after_epoch=0, tensorboard=False)
    new.write({"epoch": 1, "lr": 0.1})
    with log.open(newline="") as handle:
        assert list(csv.reader(handle)) == [["epoch", "lr"], ["1", "0.1"]]
    write_log(log, "step,loss\n1,2\n")  # not one of ours (no epoch column): replaced
    EpochLog(tmp_path, after_epoch=3, tensorboard=False)
    assert not log.exists()


def test_a_resumed_log_asks_tensorboard_to_purge_the_later_steps(tmp_path, monkeypatch):
    made = []

    class Writer:
        def __init__(self, log_dir, **options):
            made.append(options)

        def close(self):
            pass

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = Writer
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    EpochLog(tmp_path, after_epoch=4).close()
    EpochLog(tmp_path, after_epoch=0).close()
    assert made == [{"purge_step": 5}, {}]
