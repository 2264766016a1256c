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
