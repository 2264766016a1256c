"""``verify``: sample structures and group elements, run every check, report.

What is checked, and when it is a claim (judged) or only measured (reported):

==========================  =============================================
rotation                    claimed for O(3) and SO(3)
reflection                  claimed for O(3); measured otherwise
translation                 claimed for O(3) and SO(3)
permutation                 always claimed
periodic images             claimed for periodic-capable graphs
batch independence          always claimed
conservative forces         claimed for gradient (derivative) readouts
continuity at the cutoff    claimed when the model is smooth
finite on edge cases        always claimed (single atom, isolated atom, empty batch)
==========================  =============================================
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from geocompose.compiler import compile as compile_blueprint
from geocompose.data import structures as S
from geocompose.data.batch import Batch
from geocompose.nn.model import GeometricModel
from geocompose.registry import Kind
from geocompose.types import Level
from geocompose.types.group import Group
from geocompose.verify import checks, tolerances
from geocompose.verify.report import CheckResult, Verdict, VerificationReport

METALS_WITH_BULK = ("Cu", "Al", "Ni", "Ag", "Au", "Pd", "Pt", "Fe", "Na", "K", "Li")


def verify(
    source: GeometricModel | str | Path | dict,
    *,
    samples: int = 3,
    seed: int = 0,
) -> VerificationReport:
    """Check every claim of a model (or blueprint) in float64.

    Args:
        source: a compiled model (copied and cast to float64, never modified), or a
            blueprint path / dict, compiled with weights from ``seed``.
        samples: random molecules and random periodic cells each (plus fixed cases:
            a slab, a bulk metal with tied distances, an isolated atom, one atom, an
            empty batch).
        seed: seeds structures, group elements and (for blueprints) weights.

    Raises:
        BlueprintError: the blueprint is invalid (nothing is verified).
    """
    if isinstance(source, GeometricModel):
        model = copy.deepcopy(source)
    else:
        model = compile_blueprint(source, dtype=torch.float64, seed=seed)
    model = model.to(torch.float64).eval()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    species = list(model.species)
    cutoff = float(getattr(model.graph.params, "cutoff", 5.0))
    # Periodic samples only when the graph handles cells and no block rules them out
    # (a block reading absolute coordinates cannot be invariant to wrapping).
    entries = [b.entry for b in model.blocks]
    periodic = bool(model.graph.entry.periodic) and all(e.periodic is not False for e in entries)

    strategy = getattr(model, "strategy", None)
    uses_frames = bool(strategy is not None and strategy.entry.frames)
    exact_claim = bool(getattr(model, "symmetry_exact", True))
    approximate_tol = getattr(model, "symmetry_tolerance", None)

    generic = [(f"molecule {i}", S.random_molecule(rng, species, cutoff)) for i in range(samples)]
    symmetric = S.degenerate_frame_structures(species) if uses_frames else []
    if periodic:
        generic += [(f"cell {i}", S.random_cell(rng, species)) for i in range(samples)]
        generic.append(("slab", S.random_slab(rng, species)))
        metal = next((s for s in species if s in METALS_WITH_BULK), None)
        if metal is not None:
            # A lattice with tied distances: generic for graph ties, degenerate for frames.
            (symmetric if uses_frames else generic).append((f"{metal} bulk", S.metal_bulk(metal)))
    labels = [label for label, _ in generic]
    batch = Batch.from_ase([atoms for _, atoms in generic])

    report = VerificationReport(
        name=model.name,
        weights=sum(p.numel() for p in model.parameters()),
        claim=model.symmetry.value,
        derived=model.derived_symmetry.value,
        strategy=(strategy.entry.name if strategy is not None else "built_in")
        + ("" if exact_claim else " (approximate)"),
    )
    exact = tolerances.exact_rtol(torch.float64)
    geometric = model.symmetry in (Group.O3, Group.SO3)

    def add(name: str, measured: checks.Measured, claimed: bool, tol: float = exact) -> None:
        if claimed:
            verdict = Verdict.PASS if measured.worst <= tol else Verdict.FAIL
        else:
            verdict = Verdict.MEASURED
        report.checks.append(
            CheckResult(
                name,
                measured.worst,
                tol if claimed else None,
                verdict,
                measured.where,
                measured.mean,
            )
        )

    def add_geometric(name: str, measured: checks.Measured, claimed: bool) -> None:
        """An exact claim is held to the exact tolerance; an approximate one to the
        blueprint's stated tolerance, or only measured when it states none."""
        if exact_claim:
            add(name, measured, claimed)
        elif approximate_tol is not None:
            add(name, measured, claimed, approximate_tol)
        else:
            add(name, measured, False)

    add_geometric(
        "rotation", checks.rotation_check(model, batch, labels, gen, improper=False), geometric
    )
    add_geometric(
        "reflection",
        checks.rotation_check(model, batch, labels, gen, improper=True),
        model.symmetry is Group.O3,
    )
    add_geometric("translation", checks.translation_check(model, batch, labels, gen), geometric)
    if symmetric:
        # Repeated covariance eigenvalues make PCA frames ill-defined: reported, not judged.
        sym_labels = [label for label, _ in symmetric]
        sym_batch = Batch.from_ase([atoms for _, atoms in symmetric])
        for level in (Level.STRUCTURE, Level.NODE):
            for improper, name in ((False, "rotation"), (True, "reflection")):
                measured = checks.rotation_check(model, sym_batch, sym_labels, gen, improper, level)
                add(f"{name}, degenerate frames ({level.value})", measured, False)
    add("permutation", checks.permutation_check(model, batch, labels, gen), True)
    periodic_batch = [i for i, a in enumerate(generic) if a[1].pbc.any()]
    if periodic_batch:
        sub = Batch.concatenate([batch.structure(i) for i in periodic_batch])
        add(
            "periodic images",
            checks.periodic_check(model, sub, [labels[i] for i in periodic_batch]),
            True,
        )
    else:
        reason = "the model is for molecules only (graph or block not periodic)"
        report.checks.append(CheckResult("periodic images", None, None, Verdict.SKIPPED, reason))
    add("batch independence", checks.batch_independence_check(model, batch, labels), True)

    # Finite differences need a differentiable energy: a non-smooth graph (kNN) has kinks
    # where distances tie, so tied lattices are left out of this check for such graphs.
    smooth_sample = [
        i for i, (label, _) in enumerate(generic) if model.smooth or "bulk" not in label
    ]
    fd_batch = Batch.concatenate([batch.structure(i) for i in smooth_sample])
    fd_labels = [labels[i] for i in smooth_sample]
    for block in model.blocks:
        if block.entry.kind is Kind.READOUT and block.entry.derivative:
            measured = checks.conservative_check(
                model, fd_batch, fd_labels, gen, block.output, block.params.of
            )
            add(f"conservative {block.output}", measured, True, tolerances.CONSERVATIVE_RTOL)

    energies = [n for n, t in model.outputs.items() if t.level is Level.STRUCTURE and t.is_scalar]
    if energies and hasattr(model.graph.params, "cutoff"):
        measured = checks.continuity_check(model, species[0], cutoff, energies)
        add("continuity at cutoff", measured, model.smooth, tolerances.CONTINUITY_RTOL)

    rng_edge = np.random.default_rng(seed + 1)
    edge_cases = [
        ("one atom", Batch.from_ase([S.single_atom(species)])),
        ("isolated atom", Batch.from_ase([S.with_isolated_atom(rng_edge, species, cutoff)])),
        ("empty batch", Batch.empty()),
    ]
    add("finite on edge cases", checks.finite_check(model, edge_cases), True, 0.0)
    return report
