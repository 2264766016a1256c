"""Tiny blueprints for the training tests (a few hundred weights each)."""

from pathlib import Path

SAMPLE = Path(__file__).parents[3] / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"


def tiny_schnet(forces: str = "gradient") -> dict:
    """A SchNet with a few hundred weights; ``forces`` 'gradient' or 'none'."""
    readout = {"energy": {"type": "sum", "hidden": [8]}}
    if forces == "gradient":
        readout["forces"] = {"type": "gradient", "of": "energy"}
    return {
        "name": "tiny_schnet",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": {"type": "radius", "cutoff": 4.0},
        "embedding": {
            "species": ["Cu", "Au"],
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "gaussian", "num": 8},
            "envelope": {"type": "cosine"},
        },
        "interactions": [{"type": "schnet", "filters": 8, "repeat": 1}],
        "readout": readout,
    }


def tiny_painn(forces: str) -> dict:
    """A PaiNN with conservative ('gradient') or 'direct_forces' forces."""
    return {
        "name": f"tiny_painn_{forces}",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": {"type": "radius", "cutoff": 4.0},
        "embedding": {
            "species": ["Cu"],
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "bessel", "num": 6},
            "envelope": {"type": "cosine"},
        },
        "interactions": [{"type": "painn", "repeat": 1}],
        "readout": {
            "energy": {"type": "sum", "hidden": [8]},
            "forces": {"type": forces}
            if forces == "direct_forces"
            else {"type": "gradient", "of": "energy"},
        },
    }
