"""The checks: each runs the model on transformed inputs and measures a relative error.

Every check returns the largest error over the sampled structures, with the output
and structure that gave it, so a failing report says where to look.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from geocompose.data.batch import Batch
from geocompose.data.structures import dimer
from geocompose.types import FieldType, Level
from geocompose.verification import actions, groups, tolerances

Outputs = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Measured:
    """Largest and mean per-structure relative error, and where the largest was."""

    worst: float
    mean: float
    where: str


def compare(
    observed: Outputs,
    expected: Outputs,
    types: Mapping[str, FieldType],
    batch: Batch,
    labels: list[str],
) -> Measured:
    """Per-structure relative errors over all outputs.

    The scale of an output is its largest expected magnitude over the whole batch,
    floored at ``SCALE_FLOOR``, so a structure whose output is ~0 is not divided by ~0.
    """
    per_structure = torch.zeros(batch.num_structures, dtype=torch.float64)
    worst_output = [""] * batch.num_structures
    for name, exp in expected.items():
        obs = observed[name]
        if types[name].irreps is None or exp.numel() == 0:
            continue
        scale = max(float(exp.abs().max()), tolerances.SCALE_FLOOR)
        err = (obs - exp).abs().reshape(exp.shape[0], -1).max(dim=1).values.double() / scale
        err = torch.where(torch.isfinite(err), err, torch.full_like(err, float("inf")))
        if types[name].level is Level.NODE:
            row_structure = batch.batch
        else:
            row_structure = torch.arange(batch.num_structures)
        structure_err = torch.zeros(batch.num_structures, dtype=torch.float64).scatter_reduce_(
            0, row_structure, err, reduce="amax", include_self=True
        )
        for s in range(batch.num_structures):
            if structure_err[s] > per_structure[s]:
                per_structure[s] = structure_err[s]
                worst_output[s] = name
    if batch.num_structures == 0:
        return Measured(0.0, 0.0, "")
    s = int(per_structure.argmax())
    where = f"{worst_output[s] or '-'} on {labels[s]}"
    return Measured(float(per_structure.max()), float(per_structure.mean()), where)


def detached(outputs: Outputs) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in outputs.items()}


def rotation_check(
    model, batch, labels, gen, improper: bool, level: Level | None = None
) -> Measured:
    """Outputs under a Haar-random rotation (or rotation-reflection); ``level`` limits the
    comparison to per-structure or per-atom outputs."""
    rotation = groups.improper_rotation(gen) if improper else groups.haar_rotation(gen)
    return equivariance(model, batch, labels, rotation, None, level)


def translation_check(model, batch, labels, gen) -> Measured:
    return equivariance(
        model, batch, labels, torch.eye(3, dtype=torch.float64), groups.translation(gen)
    )


def equivariance(model, batch, labels, rotation, shift, level: Level | None = None) -> Measured:
    base = detached(model(batch))
    moved = detached(model(actions.transform_batch(batch, rotation, shift)))
    expected = actions.transform_outputs(base, model.outputs, rotation, shift)
    if level is not None:
        expected = {k: v for k, v in expected.items() if model.outputs[k].level is level}
    return compare(moved, expected, model.outputs, batch, labels)


def permutation_check(model, batch, labels, gen) -> Measured:
    perm = groups.permutation_within(batch.batch, gen)
    base = detached(model(batch))
    moved = detached(model(actions.permute_batch(batch, perm)))
    return compare(
        moved, actions.permute_outputs(base, model.outputs, perm), model.outputs, batch, labels
    )


def periodic_check(model, batch, labels) -> Measured:
    """Wrapping atoms into an equivalent cell (an integer, determinant-1 change of
    lattice vectors) must change nothing but position-like outputs."""
    change = torch.stack([groups.unimodular_cell_change(pbc) for pbc in batch.pbc])
    base = detached(model(batch))
    wrapped, displacement = actions.wrap_batch(batch, change)
    moved = detached(model(wrapped))
    expected = {
        name: value + displacement if model.outputs[name].translates else value
        for name, value in base.items()
    }
    return compare(moved, expected, model.outputs, batch, labels)


def batch_independence_check(model, batch, labels) -> Measured:
    """Each structure's outputs alone must equal its outputs inside the batch."""
    together = detached(model(batch))
    alone = [detached(model(batch.structure(s))) for s in range(batch.num_structures)]
    joined = {name: torch.cat([a[name] for a in alone]) for name in together}
    return compare(together, joined, model.outputs, batch, labels)


def conservative_check(
    model, batch, labels, gen, force: str, energy: str, smooth: bool = True
) -> Measured:
    """``-F . d`` against a central difference of E along random unit displacements d.

    A model whose graph is not smooth (kNN) has kinks where its neighbour sets change;
    a stencil across one measures the kink, not the forces. Such a stencil is found
    without looking inside the model: the central differences with steps h and 2h,
    which agree to O(h^2) on a smooth energy (conservative or not), disagree by O(1)
    across a kink. For ``smooth=False`` those structures are left out, and named."""
    base = model(batch)
    forces = base[force].detach()
    direction = torch.randn(batch.positions.shape, generator=gen, dtype=torch.float64)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp(min=1e-12)
    h = tolerances.FD_STEP

    def energy_at(step: float) -> torch.Tensor:
        e = model(batch.replace(positions=batch.positions + step * direction))[energy]
        return e.detach().reshape(-1)  # (B,)

    e_2h, e_h, e_mh, e_m2h = (energy_at(t * h) for t in (2, 1, -1, -2))
    # Five-point central difference: truncation error O(h^4), so the check can be tight.
    numeric = (-e_2h + 8 * e_h - 8 * e_mh + e_m2h) / (12 * h)
    predicted = -torch.zeros(batch.num_structures, dtype=torch.float64).index_add_(
        0, batch.batch, (forces * direction).sum(dim=1)
    )
    scale = max(float(forces.abs().max()) if forces.numel() else 0.0, tolerances.SCALE_FLOOR)
    err = (numeric - predicted).abs() / scale
    note = ""
    if not smooth:
        kinked = ((e_h - e_mh) / (2 * h) - (e_2h - e_m2h) / (4 * h)).abs() / scale
        kinked = kinked > tolerances.KINK_RTOL
        if kinked.any():
            names = ", ".join(label for label, k in zip(labels, kinked.tolist()) if k)
            note = f" ({names} left out: the graph changes within the stencil)"
            if kinked.all():
                return Measured(0.0, 0.0, f"no structure measured{note}")
            err = err[~kinked]
            labels = [label for label, k in zip(labels, kinked.tolist()) if not k]
    s = int(err.argmax())
    return Measured(float(err.max()), float(err.mean()), f"{force} vs dE/dx on {labels[s]}{note}")


def continuity_check(model, symbol: str, cutoff: float, energy_names: list[str]) -> Measured:
    """Energy of a dimer just inside vs just outside the cutoff."""
    delta = tolerances.CUTOFF_DELTA
    inside = Batch.from_ase([dimer(symbol, cutoff - delta)])
    outside = Batch.from_ase([dimer(symbol, cutoff + delta)])
    reference = Batch.from_ase([dimer(symbol, 0.6 * cutoff)])
    e_in, e_out, e_ref = (detached(model(b)) for b in (inside, outside, reference))
    worst, where = 0.0, ""
    for name in energy_names:
        scale = max(
            float((e_ref[name] - e_out[name]).abs().max()),
            float(e_out[name].abs().max()),
            tolerances.SCALE_FLOOR,
        )
        err = float((e_in[name] - e_out[name]).abs().max()) / scale
        if err >= worst:
            worst, where = err, f"{name}: {symbol}2 at cutoff ± {delta:g} Å"
    return Measured(worst, worst, where)


def finite_check(model, batches: list[tuple[str, Batch]], gradients: bool = True) -> Measured:
    """Outputs (and, when ``gradients``, their gradients w.r.t. positions) are finite
    on edge cases."""
    bad = []
    for label, batch in batches:
        if not gradients:
            outputs = detached(model(batch))
            if not all(torch.isfinite(v).all() for v in outputs.values() if v.is_floating_point()):
                bad.append(f"output on {label}")
            continue
        positions = batch.positions.detach().clone().requires_grad_(True)
        outputs = model(batch.replace(positions=positions))
        values = [v for v in outputs.values() if v.is_floating_point()]
        if not all(torch.isfinite(v).all() for v in values):
            bad.append(f"output on {label}")
            continue
        total = sum(v.sum() for v in values if v.requires_grad)
        if isinstance(total, torch.Tensor) and total.requires_grad and positions.numel():
            (grad,) = torch.autograd.grad(total, positions, allow_unused=True)
            if grad is not None and not torch.isfinite(grad).all():
                bad.append(f"gradient on {label}")
    return Measured(
        float(len(bad)), float(len(bad)), ", ".join(bad) or f"{len(batches)} edge cases"
    )
