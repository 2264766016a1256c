"""Public hypothesis strategies: structures, group elements and valid compositions.

The heart is :func:`compositions`: it draws blueprints from whatever is registered,
choosing each interaction only among blocks whose typing rule accepts the fields
upstream of it, so every drawn composition type-checks and compositions nobody wrote
by hand get verified.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import reject
from hypothesis import strategies as st

from geocompose.compiler import check, interaction_upstream
from geocompose.compiler.resolve import registered_stage
from geocompose.data import structures as S
from geocompose.data.batch import Batch
from geocompose.errors import BlueprintError
from geocompose.nn.block import BuildContext
from geocompose.registry import REGISTRY, Kind
from geocompose.testing.params import params_strategy
from geocompose.types.signature import TypeRefusal
from geocompose.verify import groups

SPECIES = ["H", "C", "O", "Cu"]


@st.composite
def rotations(draw, improper: bool = False) -> torch.Tensor:
    """Haar-random rotations (float64), or improper ones."""
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    return groups.improper_rotation(gen) if improper else groups.haar_rotation(gen)


@st.composite
def structures(
    draw, species: list[str] = SPECIES, cutoff: float = 4.0, periodic: bool | None = None
) -> Batch:
    """A batch of 1–3 random molecules and/or periodic cells (float64)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    count = draw(st.integers(1, 3))
    atoms = []
    for _ in range(count):
        cell = draw(st.booleans()) if periodic is None else periodic
        atoms.append(
            S.random_cell(rng, species) if cell else S.random_molecule(rng, species, cutoff)
        )
    return Batch.from_ase(atoms)


@st.composite
def graphs(draw, cutoff: float) -> dict:
    """A graph section: radius (sometimes with a long-range edge set), kNN or complete."""
    kind = draw(st.sampled_from(["radius", "radius", "radius_long_range", "knn", "complete"]))
    if kind == "radius_long_range":
        return {
            "type": "radius",
            "cutoff": cutoff,
            "long_range_cutoff": cutoff + draw(st.sampled_from([2.0, 4.0])),
        }
    if kind == "knn":
        return {"type": "knn", "k": draw(st.integers(2, 8)), "cutoff": cutoff}
    return {"type": kind, "cutoff": cutoff}


def _accepts(entry, params: dict, upstream: dict, species: list[str], cutoff: float) -> bool:
    try:
        model = entry.params.model_validate({"type": entry.name, **params})
    except ValueError:  # a drawn combination the params model refuses
        return False
    stage = registered_stage(Kind.INTERACTION, model, BuildContext(tuple(species), cutoff), "x")
    return not isinstance(stage.signature(upstream), TypeRefusal)


@st.composite
def compositions(
    draw,
    interactions: list[str] | None = None,
    max_interactions: int = 2,
    species: list[str] = SPECIES,
) -> dict:
    """A valid blueprint dict drawn from the registry.

    Args:
        interactions: restrict the first interaction to these names (e.g. one block
            under test); later ones are drawn from every registered interaction.
        max_interactions: at most this many interaction entries.
    """
    cutoff = draw(st.sampled_from([3.0, 4.0]))
    smooth = [n for n in REGISTRY.names(Kind.ENVELOPE) if REGISTRY.get(Kind.ENVELOPE, n).smooth]
    embedding = {"species": species, "envelope": {"type": draw(st.sampled_from(smooth))}}
    for key, kind in (("node", Kind.NODE_EMBEDDING), ("radial", Kind.RADIAL)):
        name = draw(st.sampled_from(REGISTRY.names(kind)))
        embedding[key] = {"type": name, **draw(params_strategy(REGISTRY.get(kind, name).params))}
    embedding["angular"] = {"l_max": draw(st.integers(1, 2))}
    blueprint = {
        "name": "drawn",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": draw(graphs(cutoff)),
        "embedding": embedding,
        "interactions": [],
        "readout": {"energy": {"type": "sum", "hidden": [4]}, "forces": {"type": "gradient"}},
    }
    for position in range(draw(st.integers(1, max_interactions))):
        upstream = interaction_upstream(blueprint)
        names = (
            interactions if (position == 0 and interactions) else REGISTRY.names(Kind.INTERACTION)
        )
        candidates = []
        for name in names:
            entry = REGISTRY.get(Kind.INTERACTION, name)
            params = {**draw(params_strategy(entry.params)), "repeat": 1}
            if _accepts(entry, params, upstream, species, cutoff):
                candidates.append((name, params))
        if not candidates:
            break
        name, params = draw(st.sampled_from(candidates))
        blueprint["interactions"].append({"type": name, **params})
    if any(
        REGISTRY.get(Kind.INTERACTION, i["type"]).periodic is False
        for i in blueprint["interactions"]
    ):
        blueprint["graph"] = {"type": "complete", "cutoff": cutoff}  # a molecules-only block
    try:
        trace = check(blueprint)  # the readout may still refuse (e.g. no 0e channels left)
    except BlueprintError:
        reject()
    if not blueprint["interactions"]:
        reject()
    # Claim what the blocks guarantee (a signed-torsion block makes the model SO(3)).
    blueprint["symmetry"]["group"] = trace.derived.value
    return blueprint
