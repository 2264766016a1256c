"""A checkpoint trained by ``geocompose train`` (one short epoch), shared by the engine
tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from ase.io import read, write

from geocompose.cli.main import main

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "train"))
from train_cases import SAMPLE, tiny_schnet


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """``best.pt`` of one epoch of ``geocompose train --dtype float64`` on 16 structures.

    The model is the training tests' tiny SchNet on Cu alone: a 32-atom MD step takes
    milliseconds, and its cosine envelope makes it smooth at the cutoff, so NVE
    conserves energy.
    """
    root = tmp_path_factory.mktemp("deploy_train")
    blueprint = tiny_schnet()
    blueprint["name"] = "deploy_cu"
    blueprint["embedding"]["species"] = ["Cu"]
    (root / "deploy_cu.yaml").write_text(yaml.safe_dump(blueprint))
    write(root / "cu.extxyz", read(SAMPLE, index=":16"), format="extxyz")
    code = main(
        [
            "train",
            str(root / "deploy_cu.yaml"),
            str(root / "cu.extxyz"),
            "--out",
            str(root / "run"),
            "--epochs",
            "1",
            "--batch-atoms",
            "128",
            "--dtype",
            "float64",
            "--no-progress",
        ]
    )
    assert code == 0
    return root / "run" / "best.pt"


@pytest.fixture(scope="session")
def exported(checkpoint, tmp_path_factory):
    """The checkpoint exported by the command line in float64 and float32."""
    root = tmp_path_factory.mktemp("metatomic")
    paths = {}
    for dtype in ("float64", "float32"):
        paths[dtype] = root / f"cu_{dtype}.pt"
        args = ["export", str(checkpoint), str(paths[dtype]), "--format", "metatomic"]
        assert main([*args, "--dtype", dtype]) == 0
    return paths
