"""Public hypothesis strategies: structures, group elements and valid compositions.

The heart is :func:`compositions`: it draws blueprints from whatever is registered,
choosing every knob (graph builder, bases, interactions, readouts, strategy) only
among those whose typing rule accepts the fields upstream of it, so every drawn
composition type-checks, compositions nobody wrote by hand get verified, and a knob
registered by user code is drawn with no change here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict

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
from geocompose.nn.symmetry.base import StrategyContext
from geocompose.registry import REGISTRY, Kind
from geocompose.testing.params import params_strategy
from geocompose.types import Level, scalars
from geocompose.types import fields as F
from geocompose.types.group import Group
from geocompose.types.signature import TypeRefusal
from geocompose.verification import groups

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


Choices = Mapping[Kind, Sequence[str]]
"""Kind → the registered names a drawn composition may use at that kind's slot."""


def _ctx(kind: Kind, species, cutoff: float, output: str = "") -> BuildContext:
    ctx = BuildContext(tuple(species), cutoff, knob=kind.value, output=output)
    if kind is Kind.STRATEGY:  # accepts any blocks; the claim is set from the trace later
        return StrategyContext(**asdict(ctx), claim=Group.O3, wrapped=Group.O3)
    return ctx


def _accepted(kind: Kind, params: dict, upstream, ctx: BuildContext):
    """The validated params, or None when the params model or the typing rule refuses."""
    entry = REGISTRY.get(kind, params["type"])
    try:
        model = entry.params.model_validate(params)
    except ValueError:  # a drawn combination the params model refuses
        return None
    stage = registered_stage(kind, model, ctx, kind.value)
    sig = stage.signature(upstream)
    return None if isinstance(sig, TypeRefusal) else sig


def knob(draw, kind: Kind, names: Sequence[str], upstream, ctx: BuildContext, **fixed):
    """Draw one knob of ``kind`` among ``names``: params from its params model (plus
    ``fixed``), kept only if its typing rule accepts ``upstream``. Returns the params
    dict and its signature, or None when no candidate type-checks."""
    candidates = []
    for name in names:
        params = {**draw(params_strategy(REGISTRY.get(kind, name).params)), **fixed, "type": name}
        sig = _accepted(kind, params, upstream, ctx)
        if sig is not None:
            candidates.append((params, sig))
    return draw(st.sampled_from(candidates)) if candidates else None


def _names(choose: Choices, kind: Kind, default: Sequence[str] | None = None) -> list[str]:
    if kind in choose:
        return list(choose[kind])
    return list(default if default is not None else REGISTRY.names(kind))


def _require(found):
    if found is None:
        reject()  # nothing registered at this slot accepts what is upstream of it
    return found


@st.composite
def compositions(
    draw,
    interactions: list[str] | None = None,
    max_interactions: int = 2,
    species: list[str] = SPECIES,
    choose: Choices | None = None,
) -> dict:
    """A valid blueprint dict drawn from the registry, every slot from its kind's entries.

    Each knob (graph builder, node embedding, radial basis, envelope, angular basis,
    interactions, readouts, strategy) is drawn among the registered ones whose typing
    rule accepts the fields upstream of it, with params drawn from its params model;
    so a knob registered by user code is drawn too, with no change here.

    Args:
        interactions: restrict the first interaction to these names (e.g. one block
            under test); later ones are drawn from every registered interaction.
        max_interactions: at most this many interaction entries.
        choose: restrict a kind's slot to these names. A chosen readout is added as an
            extra output ``extra`` (or fills ``forces`` if it is a derivative readout).
            Unless chosen, envelopes are drawn among the smooth ones and the strategy
            is ``built_in`` (frame strategies multiply every check's cost).
    """
    choose = dict(choose or {})
    if interactions:
        choose.setdefault(Kind.INTERACTION, interactions)
    cutoff = draw(st.sampled_from([3.0, 4.0]))

    def ctx(kind: Kind, output: str = "") -> BuildContext:
        return _ctx(kind, species, cutoff, output)

    upstream = dict(F.INPUT_TYPES)
    graphs = _names(choose, Kind.GRAPH)
    graph, sig = _require(knob(draw, Kind.GRAPH, graphs, upstream, ctx(Kind.GRAPH), cutoff=cutoff))
    upstream.update(sig.writes)
    embedding: dict = {"species": species}
    smooth = [e.name for e in REGISTRY.entries(Kind.ENVELOPE) if e.smooth]
    for key, kind, default in (
        ("node", Kind.NODE_EMBEDDING, None),
        ("radial", Kind.RADIAL, None),
        ("envelope", Kind.ENVELOPE, smooth),
        ("angular", Kind.ANGULAR, None),
    ):
        names = _names(choose, kind, default)
        embedding[key], _ = _require(knob(draw, kind, names, upstream, ctx(kind)))
    blueprint = {
        "name": "drawn",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": graph,
        "embedding": embedding,
        "interactions": [],
        # Validation needs a readout; it is drawn once the interactions are.
        "readout": {"energy": _placeholder_readout()},
    }
    for position in range(draw(st.integers(1, max_interactions))):
        upstream = interaction_upstream(blueprint)
        names = (
            choose[Kind.INTERACTION]
            if (position == 0 and Kind.INTERACTION in choose)
            else REGISTRY.names(Kind.INTERACTION)
        )
        found = knob(draw, Kind.INTERACTION, names, upstream, ctx(Kind.INTERACTION), repeat=1)
        if found is None:
            break
        blueprint["interactions"].append(found[0])
    if not blueprint["interactions"]:
        reject()
    molecules_only = any(_periodic(Kind.INTERACTION, i) is False for i in blueprint["interactions"])
    if molecules_only and Kind.GRAPH not in choose:
        # A molecules-only block: draw the graph among molecules-only builders.
        molecular = [e.name for e in REGISTRY.entries(Kind.GRAPH) if e.periodic is False]
        if molecular:
            inputs = dict(F.INPUT_TYPES)
            found = knob(draw, Kind.GRAPH, molecular, inputs, ctx(Kind.GRAPH), cutoff=cutoff)
            blueprint["graph"], _ = _require(found)
    _draw_readouts(draw, blueprint, choose, ctx)
    strategies = _names(choose, Kind.STRATEGY, ["built_in"])
    blueprint["symmetry"]["strategy"], _ = _require(
        knob(draw, Kind.STRATEGY, strategies, interaction_upstream(blueprint), ctx(Kind.STRATEGY))
    )
    try:
        trace = check(blueprint)
    except BlueprintError:
        reject()
    # Claim what the model guarantees (a signed-torsion block makes it SO(3)).
    blueprint["symmetry"]["group"] = trace.derived.value
    return blueprint


def _placeholder_readout() -> dict:
    """A readout that validates by its type alone (never type-checked: the upstream of
    interactions is computed without readouts)."""
    for entry in REGISTRY.entries(Kind.READOUT):
        try:
            entry.params.model_validate({"type": entry.name})
        except ValueError:
            continue
        return {"type": entry.name}
    raise RuntimeError("no readout is registered whose params all have defaults")


def _periodic(kind: Kind, params: dict) -> bool | None:
    return REGISTRY.get(kind, params["type"]).periodic


def _draw_readouts(draw, blueprint: dict, choose: Choices, ctx) -> None:
    """``energy`` (a per-structure 0e), ``forces`` (a derivative of it) and, when a
    readout is chosen, that one too."""
    upstream = interaction_upstream(blueprint)
    blueprint["readout"] = {}
    chosen = list(choose.get(Kind.READOUT, []))
    entries = {e.name: e for e in REGISTRY.entries(Kind.READOUT)}
    plain = [n for n, e in entries.items() if not e.derivative]
    energy_type = scalars(1, Level.STRUCTURE)
    candidates = []
    for name in plain:
        found = knob(draw, Kind.READOUT, [name], upstream, ctx(Kind.READOUT, "energy"))
        if found is not None and found[1].writes.get("energy") == energy_type:
            candidates.append(found)
    energy, sig = draw(st.sampled_from(_require(candidates or None)))
    blueprint["readout"]["energy"] = energy
    upstream = {**upstream, **sig.writes}
    derivative = [n for n in chosen if entries[n].derivative] or [
        n for n, e in entries.items() if e.derivative
    ]
    forces = knob(draw, Kind.READOUT, derivative, upstream, ctx(Kind.READOUT, "forces"))
    if forces is not None:
        blueprint["readout"]["forces"] = forces[0]
    extra = [n for n in chosen if not entries[n].derivative]
    if extra:
        found = _require(knob(draw, Kind.READOUT, extra, upstream, ctx(Kind.READOUT, "extra")))
        blueprint["readout"]["extra"] = found[0]
