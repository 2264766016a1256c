"""The tiny blueprint and sample slice the command-line training tests share."""

from __future__ import annotations

from pathlib import Path

from ase.io import read, write

SAMPLE = Path(__file__).parents[1] / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"

TINY = """\
name: tiny_cu
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


def write_inputs(root: Path, structures: int) -> Path:
    """``root/tiny.yaml`` (:data:`TINY`) and ``root/cu.extxyz`` (the sample's first
    ``structures``); returns ``root``."""
    (root / "tiny.yaml").write_text(TINY)
    write(root / "cu.extxyz", read(SAMPLE, index=f":{structures}"), format="extxyz")
    return root
