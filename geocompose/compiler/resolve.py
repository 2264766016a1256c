"""Resolve a validated blueprint into stages: registry entries with their params.

Every stage, whatever its kind, is resolved the same way (:func:`registered_stage`):
the entry named by its params' ``type``, its typing rule ``signature(params, upstream,
ctx)`` and its builder ``builder(params, upstream, ctx)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from geocompose.nn.block import Block, BuildContext
from geocompose.nn.embedding.edge import EdgeEmbeddingParams
from geocompose.nn.symmetry.base import StrategyContext
from geocompose.registry import REGISTRY, Entry, Kind, KnobModel
from geocompose.types.group import Group
from geocompose.types.signature import FieldTypes, Signature, TypeRefusal

STRATEGY_KNOB = "symmetry.strategy"


@dataclass(frozen=True)
class Stage:
    """One registered knob of the pipeline, before it is built.

    Args:
        knob: the blueprint path that chose it, e.g. ``interactions[0]`` (``#2`` marks
            the second copy of a repeated block).
        label: how the trace names it (the knob's ``type``, or what its builder says).
        entry: the registry entry.
        signature: the typing rule applied to the upstream field types.
        build: makes the module, given the upstream field types.
    """

    knob: str
    label: str
    entry: Entry
    signature: Callable[[FieldTypes], Signature | TypeRefusal]
    build: Callable[[FieldTypes], Block]


def registered_stage(kind: Kind, params: KnobModel, ctx: BuildContext, knob: str) -> Stage:
    """The stage of one knob: its entry, typing rule and builder, bound to ``ctx``."""
    entry = REGISTRY.get(kind, params.type)  # type: ignore[attr-defined]
    builder = entry.builder
    return Stage(
        knob=knob,
        label=builder.label(params),
        entry=entry,
        signature=lambda upstream: builder.signature(params, upstream, ctx),
        build=lambda upstream: builder(params, upstream, ctx),
    )


def build_context(blueprint, knob: str, output: str = "") -> BuildContext:
    """The facts a block of ``blueprint`` may need, for the block chosen at ``knob``."""
    return BuildContext(
        tuple(blueprint.embedding.species),
        blueprint.graph.cutoff,
        knob=knob,
        output=output,
        long_range_cutoff=getattr(blueprint.graph, "long_range_cutoff", None),
    )


def edge_embedding_params(embedding) -> EdgeEmbeddingParams:
    """The edge embedding's params: the ``radial``, ``envelope`` and ``angular`` knobs
    of the blueprint's ``embedding`` section."""
    return EdgeEmbeddingParams(
        radial=embedding.radial, envelope=embedding.envelope, angular=embedding.angular
    )


def resolve(blueprint) -> list[Stage]:
    """The blueprint's blocks in pipeline order: graph, node embedding, edge embedding,
    interactions (repeats expanded), readouts (in the order written, derivative ones last)."""

    def stage(kind: Kind, params, knob: str, output: str = "") -> Stage:
        return registered_stage(kind, params, build_context(blueprint, knob, output), knob)

    stages = [
        stage(Kind.GRAPH, blueprint.graph, "graph"),
        stage(Kind.NODE_EMBEDDING, blueprint.embedding.node, "embedding.node"),
        stage(Kind.EDGE_EMBEDDING, edge_embedding_params(blueprint.embedding), "embedding"),
    ]
    for i, params in enumerate(blueprint.interactions):
        for copy in range(params.repeat):
            knob = f"interactions[{i}]" + (f"#{copy + 1}" if params.repeat > 1 else "")
            stages.append(stage(Kind.INTERACTION, params.copy_params(copy), knob))
    # Derivative readouts (forces) run after every other readout, whatever the order in
    # the file: they differentiate outputs of the symmetrised model.
    readouts = list(blueprint.readout.items())
    derivative = [REGISTRY.get(Kind.READOUT, params.type).derivative for _, params in readouts]
    for is_derivative in (False, True):
        for (output, params), flag in zip(readouts, derivative):
            if flag is is_derivative:
                stages.append(stage(Kind.READOUT, params, f"readout.{output}", output))
    return stages


def strategy_stage(blueprint, wrapped: Group) -> Stage:
    """The symmetry strategy's stage; ``wrapped`` is the guarantee of the blocks it wraps
    (known once the pipeline has type-checked)."""
    ctx = StrategyContext(
        **asdict(build_context(blueprint, STRATEGY_KNOB)),
        claim=blueprint.symmetry.group,
        wrapped=wrapped,
    )
    return registered_stage(Kind.STRATEGY, blueprint.symmetry.strategy, ctx, STRATEGY_KNOB)


def smooth_entries(blueprint) -> list[Entry]:
    """Entries whose ``smooth`` metadata decides whether the model is smooth."""
    entries = [
        REGISTRY.get(Kind.GRAPH, blueprint.graph.type),
        REGISTRY.get(Kind.ENVELOPE, blueprint.embedding.envelope.type),
    ]
    entries += [REGISTRY.get(Kind.INTERACTION, p.type) for p in blueprint.interactions]
    return entries
