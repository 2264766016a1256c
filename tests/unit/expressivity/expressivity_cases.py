"""Small blueprints for the expressivity tests: each family at 8 channels, one layer
(``layers`` sets the repeat), so a random-init check compiles and runs in well under a
second. Widths do not change which pairs a block can separate, only by how much."""

from __future__ import annotations

import copy
from pathlib import Path

from geocompose.expressivity import (
    Head,
    build_classifier,
    compile_classifier,
    distinguish,
    k_chains,
)
from geocompose.expressivity.classifier import blueprint_data

BLUEPRINTS = Path(__file__).parents[3] / "blueprints"

_BASE = {
    "symmetry": {"group": "O(3)", "strategy": "built_in"},
    "graph": {"type": "radius", "cutoff": 5.0},
    "embedding": {
        "species": ["H", "C"],
        "node": {"type": "learned", "features": 8},
        "radial": {"type": "bessel", "num": 6},
        "envelope": {"type": "polynomial", "p": 6},
    },
    "readout": {"energy": {"type": "sum", "hidden": [8]}},
}

INTERACTIONS = {
    "schnet": {"type": "schnet", "filters": 8},
    "dimenet_pp": {"type": "dimenet_pp", "hidden": 8, "int_emb": 8, "basis_emb": 4, "out_emb": 8},
    "painn": {"type": "painn"},
    "faenet": {"type": "faenet", "hidden": 8},
    "tfn": {"type": "tfn", "features": "8x0e + 4x1o + 2x2e", "tensor_product": {"l_max": 2}},
    "mace2": {
        "type": "mace",
        "features": "4x0e + 4x1o",
        "correlation": 2,
        "tensor_product": {"l_max": 2},
        "radial_hidden": [8],
    },
    "mace3": {
        "type": "mace",
        "features": "4x0e + 4x1o",
        "correlation": 3,
        "tensor_product": {"l_max": 2},
        "radial_hidden": [8],
    },
}


def tiny(name: str) -> dict:
    """A small blueprint dict with one interaction of the given family."""
    data = copy.deepcopy(_BASE)
    data["name"] = f"tiny-{name}"
    data["interactions"] = [copy.deepcopy(INTERACTIONS[name])]
    if name in ("tfn", "mace2", "mace3"):
        data["embedding"]["angular"] = {"l_max": 2}
        data["embedding"]["node"] = {"type": "one_hot"}
    if name == "faenet":
        data["symmetry"]["strategy"] = "frame_averaging"
    return data


def separation(name: str, pair, layers: int, head: Head = Head.INVARIANT, seeds: int = 2):
    """Random-init distinguishability of ``pair`` by ``tiny(name)`` at ``layers``."""
    return separation_of(tiny(name), pair, layers, head, seeds)


def separation_of(data: dict, pair, layers: int, head: Head = Head.INVARIANT, seeds: int = 2):
    """Random-init distinguishability of ``pair`` by the blueprint ``data`` at ``layers``."""
    classifier = build_classifier(data, layers, head)
    return distinguish(lambda seed: compile_classifier(classifier, seed=seed), pair, seeds=seeds)


def shipped(name: str, **knobs) -> dict:
    """``blueprints/<name>.yaml`` as data, ``knobs`` set on its first interaction entry."""
    data = blueprint_data(BLUEPRINTS / f"{name}.yaml")
    data["interactions"][0].update(knobs)
    return data


def chain_gap(data: dict, layers: int, seeds: int = 2):
    """How the blueprint ``data`` separates the two 4-chains at random init: the gap
    tests hold a shipped setting to a measured size of this gap."""
    return separation_of(data, k_chains(4), layers, seeds=seeds)
