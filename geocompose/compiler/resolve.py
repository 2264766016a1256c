"""Resolve a validated blueprint into stages: registry entries with their params."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from geocompose.nn.block import Block, BuildContext
from geocompose.nn.embedding.edge import AngularParams, EdgeEmbedding
from geocompose.registry import REGISTRY, Entry, Kind
from geocompose.types.signature import FieldTypes, Signature, TypeRefusal


@dataclass(frozen=True)
class Stage:
    """One block of the pipeline, before it is built.

    Args:
        knob: the blueprint path that chose it, e.g. ``interactions[0]`` (``#2`` marks
            the second copy of a repeated block).
        label: the knob's ``type`` (``schnet``) or the stage's role.
        entry: the registry entry (None for the fixed edge-embedding stage).
        signature: the typing rule applied to the upstream field types.
        build: makes the module, given the upstream field types.
    """

    knob: str
    label: str
    entry: Entry | None
    signature: Callable[[FieldTypes], Signature | TypeRefusal]
    build: Callable[[FieldTypes], Block]


def registered_stage(kind: Kind, params, ctx: BuildContext, knob: str) -> Stage:
    entry = REGISTRY.get(kind, params.type)
    builder = entry.builder
    return Stage(
        knob=knob,
        label=entry.name,
        entry=entry,
        signature=lambda upstream: builder.signature(params, upstream, ctx),
        build=lambda upstream: builder(params, upstream, ctx),
    )


def resolve(blueprint) -> list[Stage]:
    """The blueprint's blocks in pipeline order: graph, node embedding, edge embedding,
    interactions (repeats expanded), readouts (in the order written, derivative ones last)."""
    species = tuple(blueprint.embedding.species)
    cutoff = getattr(blueprint.graph, "cutoff", None)
    long_range = getattr(blueprint.graph, "long_range_cutoff", None)

    def ctx(knob: str, output: str = "") -> BuildContext:
        return BuildContext(species, cutoff, knob=knob, output=output, long_range_cutoff=long_range)

    stages = [
        registered_stage(Kind.GRAPH, blueprint.graph, ctx("graph"), "graph"),
        registered_stage(
            Kind.NODE_EMBEDDING, blueprint.embedding.node, ctx("embedding.node"), "embedding.node"
        ),
        edge_stage(blueprint.embedding, cutoff, ctx("embedding")),
    ]
    for i, params in enumerate(blueprint.interactions):
        for copy in range(params.repeat):
            knob = f"interactions[{i}]" + (f"#{copy + 1}" if params.repeat > 1 else "")
            stages.append(registered_stage(Kind.INTERACTION, params, ctx(knob), knob))
    # Derivative readouts (forces) run after every other readout, whatever the order in
    # the file: they differentiate outputs of the symmetrised model.
    readouts = list(blueprint.readout.items())
    derivative = [REGISTRY.get(Kind.READOUT, params.type).derivative for _, params in readouts]
    for is_derivative in (False, True):
        for (output, params), flag in zip(readouts, derivative):
            if flag is is_derivative:
                knob = f"readout.{output}"
                stages.append(registered_stage(Kind.READOUT, params, ctx(knob, output), knob))
    return stages


def edge_stage(embedding, cutoff: float, ctx: BuildContext) -> Stage:
    """The fixed stage that evaluates radial basis, envelope and harmonics once per model."""
    radial_entry = REGISTRY.get(Kind.RADIAL, embedding.radial.type)
    envelope_entry = REGISTRY.get(Kind.ENVELOPE, embedding.envelope.type)
    l_max = embedding.angular.l_max if embedding.angular is not None else None

    def build(upstream: FieldTypes) -> Block:
        radial = radial_entry.builder(embedding.radial, cutoff)
        envelope = envelope_entry.builder(embedding.envelope, cutoff)
        angular = AngularParams(l_max=l_max) if l_max is not None else None
        return EdgeEmbedding(radial, envelope, angular, upstream, ctx)

    return Stage(
        knob="embedding",
        label=f"{radial_entry.name} x {envelope_entry.name}"
        + (f" + Y(l<={l_max})" if l_max is not None else ""),
        entry=None,
        signature=lambda upstream: EdgeEmbedding.edge_signature(
            embedding.radial.num, l_max, upstream
        ),
        build=build,
    )


def smooth_entries(blueprint) -> list[Entry]:
    """Entries whose ``smooth`` metadata decides whether the model is smooth."""
    entries = [
        REGISTRY.get(Kind.GRAPH, blueprint.graph.type),
        REGISTRY.get(Kind.ENVELOPE, blueprint.embedding.envelope.type),
    ]
    entries += [REGISTRY.get(Kind.INTERACTION, p.type) for p in blueprint.interactions]
    return entries
