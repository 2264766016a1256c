"""A checkpoint trained by ``geocompose train`` (one short epoch), shared by the engine
tests, and the structures they run on."""

from __future__ import annotations

from pathlib import Path

import pytest
from ase.io import read, write

from geocompose.cli.main import main

SAMPLE = Path(__file__).parents[2] / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"

# A float64 SchNet on Cu, small enough that a 32-atom MD step takes milliseconds; the
# cosine envelope makes it smooth at the cutoff, so NVE conserves energy.
BLUEPRINT = """\
name: deploy_cu
symmetry: {group: O(3), strategy: built_in}
graph: {type: radius, cutoff: 4.0}
embedding:
  species: [Cu]
  node: {type: learned, features: 8}
  radial: {type: gaussian, num: 8}
  envelope: {type: cosine}
interactions:
  - {type: schnet, filters: 8}
readout:
  energy: {type: sum, hidden: [8]}
  forces: {type: gradient, of: energy}
"""


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """``best.pt`` of one epoch of ``geocompose train --dtype float64`` on 16 structures."""
    root = tmp_path_factory.mktemp("deploy_train")
    (root / "deploy_cu.yaml").write_text(BLUEPRINT)
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
