"""``compile``: blueprint (path, dict or model) → type-checked ``GeometricModel``."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from geocompose.blueprint import LoadedBlueprint, read_blueprint, validate_blueprint
from geocompose.compiler.resolve import STRATEGY_KNOB, resolve, smooth_entries, strategy_stage
from geocompose.compiler.trace import TraceRow, TypeTrace
from geocompose.compiler.typecheck import typecheck
from geocompose.errors import BlueprintError
from geocompose.nn.model import GeometricModel
from geocompose.types import Level
from geocompose.types import fields as F
from geocompose.types.group import Group
from geocompose.types.signature import TypeRefusal


def load(source: str | Path | dict | Any) -> LoadedBlueprint:
    """Read and validate a blueprint from a YAML path, a dict, or a Blueprint model."""
    if isinstance(source, LoadedBlueprint):
        return source
    if isinstance(source, (str, Path)):
        return read_blueprint(source)
    if isinstance(source, dict):
        return validate_blueprint(source, None, "<dict>")
    if hasattr(source, "model_dump"):
        return LoadedBlueprint(source, None, "<object>")
    raise BlueprintError(
        f"cannot compile a {type(source).__name__}; give a path, dict or Blueprint"
    )


def check(source) -> TypeTrace:
    """Type-check a blueprint without building weights (used by search and ``info``)."""
    loaded = load(source)
    stages = resolve(loaded.blueprint)
    signatures, upstream = typecheck(stages, loaded.locate)
    strategy, strategy_sig = _strategy(loaded, signatures, upstream)
    return _trace(loaded, stages, signatures, strategy, strategy_sig, weights=None)


def interaction_upstream(source) -> dict:
    """Field types after the graph, embeddings and interactions (before any readout);
    what a block appended to ``interactions`` would receive. Used by search and by the
    composition strategy to choose only blocks that type-check."""
    loaded = load(source)
    stages = [s for s in resolve(loaded.blueprint) if not s.knob.startswith("readout")]
    _, upstream = typecheck(stages, loaded.locate)
    return upstream


def compile(
    source, *, dtype: torch.dtype = torch.float32, seed: int | None = None
) -> GeometricModel:
    """Compile a blueprint into a runnable model.

    Args:
        source: a YAML path, a dict, or a validated Blueprint.
        dtype: parameter dtype (verification uses float64).
        seed: if given, weights are initialised from this seed (reproducible builds).

    Raises:
        BlueprintError: invalid or ill-typed blueprint, located in its file.
    """
    loaded = load(source)
    stages = resolve(loaded.blueprint)
    signatures, final = typecheck(stages, loaded.locate)
    strategy_at, strategy_sig = _strategy(loaded, signatures, final)
    # A seeded build must not disturb the caller's random stream.
    with torch.random.fork_rng(enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        upstream = dict(F.INPUT_TYPES)
        blocks = []
        for stage, sig in zip(stages, signatures):
            blocks.append(_build(stage, upstream, loaded))
            upstream.update(sig.writes)
        # Last, so the blocks' weights are those of a model without it; seeded, since a
        # strategy can have weights of its own (a learned canonicaliser).
        strategy = _build(strategy_at, final, loaded)
    trace = _trace(
        loaded,
        stages,
        signatures,
        strategy_at,
        strategy_sig,
        weights=[sum(p.numel() for p in b.parameters()) for b in blocks],
    )
    symmetry = loaded.blueprint.symmetry
    model = GeometricModel(
        name=loaded.blueprint.name,
        species=loaded.blueprint.embedding.species,
        blocks=blocks,
        outputs=trace.outputs,
        symmetry=trace.claim,
        derived_symmetry=trace.derived,
        smooth=trace.smooth,
        strategy=strategy,
        symmetry_exact=trace.exact,
        symmetry_tolerance=symmetry.tolerance,
        trace=trace,
    )
    model.blueprint = loaded.blueprint  # what :func:`recompiled` builds again
    return model.to(dtype)


def recompiled(model: GeometricModel, dtype: torch.dtype) -> GeometricModel:
    """A copy of a compiled ``model`` in a wider ``dtype``, with its constants exact.

    ``model.to(torch.float64)`` cannot restore what a float32 build rounded: constants
    computed at build time in float64 (the Clebsch-Gordan tables of the spherical
    blocks) keep their float32 rounding, ~1e-10 off, which the verifier's exact
    tolerance sees. So the blueprint is compiled again in ``dtype`` and the model's
    state loaded into it by :func:`exact_state`.
    """
    blueprint = getattr(model, "blueprint", None)
    if blueprint is None or not torch.finfo(dtype).bits > torch.finfo(model.dtype).bits:
        return copy.deepcopy(model).to(dtype)
    fresh = compile(blueprint, dtype=dtype, seed=0)  # seeded: the caller's stream untouched
    fresh.load_state_dict(exact_state(fresh, model.state_dict()))
    device = next((t.device for t in model.state_dict().values()), torch.device("cpu"))
    return fresh.to(device).train(model.training)


def exact_state(module: torch.nn.Module, state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` (of a narrower dtype) as it should load into ``module``, just compiled.

    A buffer of ``state`` equal to ``module``'s own value rounded to the narrower dtype
    is a constant of the build (a Clebsch-Gordan table, a basis's frequencies): it keeps
    ``module``'s exact value. Parameters, and buffers changed since the build (fitted
    reference energies, say), come from ``state``.
    """
    own = module.state_dict()
    parameters = {name for name, _ in module.named_parameters()}
    exact = dict(state)
    for name, value in state.items():
        mine = own.get(name)
        if (
            name not in parameters
            and isinstance(mine, torch.Tensor)
            and isinstance(value, torch.Tensor)
            and value.is_floating_point()
            and mine.is_floating_point()
            and torch.finfo(mine.dtype).bits > torch.finfo(value.dtype).bits
            and mine.shape == value.shape
            and torch.equal(mine.to(value.dtype), value.to(mine.device))
        ):
            exact[name] = mine
    return exact


def _build(stage, upstream, loaded: LoadedBlueprint):
    """Build one block; a size the machine cannot allocate is the user's knob, located."""
    try:
        return stage.build(upstream)
    except (MemoryError, RuntimeError) as err:
        if not isinstance(err, MemoryError) and "alloc" not in str(err).lower():
            raise
        knob = stage.knob.split("#")[0]
        raise BlueprintError(
            f"cannot allocate the weights of '{stage.label}' ({str(err).splitlines()[0][:120]}); "
            "reduce its sizes",
            loaded.locate(knob),
            knob,
        ) from None


def _strategy(loaded: LoadedBlueprint, signatures, upstream):
    """The strategy's stage and signature, around blocks that guarantee the weakest of
    their guarantees; a strategy that refuses the model's fields is located."""
    wrapped = Group.weakest(sig.guarantee for sig in signatures)
    stage = strategy_stage(loaded.blueprint, wrapped)
    sig = stage.signature(upstream)
    if isinstance(sig, TypeRefusal):
        raise BlueprintError(sig.render(), loaded.locate(STRATEGY_KNOB), STRATEGY_KNOB)
    return stage, sig


def _trace(loaded: LoadedBlueprint, stages, signatures, strategy, strategy_sig, weights):
    bp = loaded.blueprint
    smooth = all(e.smooth is not False for e in smooth_entries(bp))
    graph = stages[0].entry  # resolve() puts the graph builder first
    # A block that cannot be periodic (it reads absolute coordinates) rules cells out.
    periodic = bool(graph.periodic) and all(stage.entry.periodic is not False for stage in stages)
    # Frames built from a whole structure couple all of its atoms, like a normalisation.
    extensive = not strategy.entry.frames and all(sig.extensive for sig in signatures)
    conservative = {
        name: _differentiated(sig)
        for stage, sig in zip(stages, signatures)
        if stage.entry.derivative
        for name in sig.writes
    }
    outputs = {}
    for name in bp.readout:
        for sig in signatures:
            if name in sig.writes:
                outputs[name] = sig.writes[name]
        per_atom = getattr(bp.readout[name], "per_atom", None)
        if per_atom:
            outputs[per_atom] = next(s.writes[per_atom] for s in signatures if per_atom in s.writes)
    rows = [
        TraceRow(
            knob=stage.knob,
            label=stage.label,
            reads=dict(sig.reads),
            writes=dict(sig.writes),
            guarantee=sig.guarantee,
            weights=weights[i] if weights else 0,
        )
        for i, (stage, sig) in enumerate(zip(stages, signatures))
    ]
    return TypeTrace(
        name=bp.name,
        rows=rows,
        claim=bp.symmetry.group,
        derived=strategy_sig.guarantee,
        exact=strategy_sig.exact,
        tolerance=bp.symmetry.tolerance,
        strategy=strategy.entry.name,
        frames=strategy.entry.frames,
        continuous_frames=bool(strategy.entry.smooth),
        smooth=smooth,
        cutoff=float(bp.graph.cutoff),
        reach=graph.builder.reach(bp.graph),
        periodic=periodic,
        extensive=extensive,
        conservative=conservative,
        outputs=outputs,
    )


def _differentiated(sig) -> str:
    """The per-structure energy a derivative readout differentiates: the one
    structure-level field among what it reads."""
    return next(name for name, ftype in sig.reads.items() if ftype.level is Level.STRUCTURE)
