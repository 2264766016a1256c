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


def tiny_stochastic(strategy: str) -> dict:
    """A SchNet followed by an MLP on raw coordinates (no symmetry of its own), wrapped
    in a strategy that draws at random in training: 'stochastic_frame_averaging' or
    'augmentation'. Its draws change its training, so they must be reproducible."""
    blueprint = tiny_schnet()
    blueprint["name"] = f"tiny_{strategy}"
    blueprint["symmetry"] = {"group": "O(3)", "strategy": strategy}
    blueprint["interactions"].append({"type": "coordinate_mlp", "hidden": 8})
    return blueprint
