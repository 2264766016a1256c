"""Checks beyond symmetry: locality and extensivity of the energy.

Both are claims when the compiler derived the model extensive (no per-structure
normalisation, mean over atoms, all-pairs graph or global frame: ``Facts.extensive``)
and measurements otherwise. They catch different defects: a hidden interaction range
beyond the cutoff moves forces when a ghost atom comes near (locality) but cancels for
copies far apart; a per-structure constant leaves every force alone but does not
double with the system (extensivity).
"""

from __future__ import annotations

import ase
import numpy as np
import torch

from geocompose.data.batch import Batch
from geocompose.types import Level
from geocompose.verification import tolerances
from geocompose.verification.checks import Measured, detached
from geocompose.verification.record import Check, Rows, Sample, Skip

# A ghost atom sits this far (Å) beyond the reach of every atom; far copies are this
# far beyond twice the reach from each other.
GHOST_GAP = 0.5
COPY_GAP = 10.0


def _extensive(facts) -> bool:
    return facts.extensive


def _exact(facts) -> float:
    return tolerances.exact_rtol(torch.float64)


def _molecules(s: Sample) -> list[tuple[str, ase.Atoms]]:
    return [(label, atoms) for label, atoms in s.structures if not atoms.pbc.any()]


def _energies(subject, structures: list[ase.Atoms]) -> dict[str, torch.Tensor]:
    """Per-structure energies of several structures, each (B,)."""
    out = detached(subject(Batch.from_ase(structures, dtype=subject.dtype)))
    return {name: out[name].reshape(-1) for name in subject.facts.energies}


def far_copies(atoms: ase.Atoms, reach: float) -> ase.Atoms:
    """Two copies of a molecule, no atom of one within ``2 * reach`` of the other."""
    extent = np.ptp(atoms.positions, axis=0).max() if len(atoms) else 0.0
    other = atoms.copy()
    other.positions += np.array([extent + 2 * reach + COPY_GAP, 0.0, 0.0])
    return atoms + other


def with_ghost(atoms: ase.Atoms, symbol: str, reach: float) -> ase.Atoms:
    """The molecule plus one atom just beyond ``reach`` of every one of its atoms."""
    centre = atoms.positions.mean(axis=0)
    radius = np.linalg.norm(atoms.positions - centre, axis=1).max()
    ghost = ase.Atoms(symbol, positions=[centre + np.array([radius + reach + GHOST_GAP, 0, 0])])
    return atoms + ghost


def extensivity_check(s: Sample) -> Rows:
    """E(two far copies) = 2 E(one) on molecules, and E(2x supercell) = 2 E(cell)."""
    facts = s.subject.facts
    if not facts.energies:
        return Skip("no per-structure scalar output")
    cases = [(f"two copies of {label}", atoms, far_copies(atoms, facts.reach))
             for label, atoms in _molecules(s)]
    cases += [
        (f"2x supercell of {label}", atoms, atoms.repeat((2, 1, 1)))
        for label, atoms in s.structures
        if atoms.pbc.all()
    ]
    singles = _energies(s.subject, [one for _, one, _ in cases])
    doubles = _energies(s.subject, [two for _, _, two in cases])
    worst, total, where = 0.0, 0.0, ""
    for name in facts.energies:
        scale = max(float(singles[name].abs().max()) * 2, tolerances.SCALE_FLOOR)
        errors = (doubles[name] - 2 * singles[name]).abs() / scale
        errors = torch.where(torch.isfinite(errors), errors, torch.full_like(errors, np.inf))
        k = int(errors.argmax())
        total = max(total, float(errors.mean()))
        if float(errors[k]) >= worst:
            worst, where = float(errors[k]), f"{name} on {cases[k][0]}"
    return [("extensivity", Measured(worst, total, where))]


def locality_check(s: Sample) -> Rows:
    """A ghost atom beyond the reach of every atom changes no other atom's per-atom
    outputs (forces, atomic energies) nor the gradient of any energy on them."""
    facts = s.subject.facts
    molecules = _molecules(s)
    per_atom = [n for n, t in facts.outputs.items() if t.level is Level.NODE and t.irreps]
    if not molecules or not (per_atom or (facts.energies and facts.differentiable)):
        return Skip("no molecule sampled, or no per-atom output or differentiable energy")
    symbol = facts.species[0]
    worst, total, where = 0.0, 0.0, ""
    for label, atoms in molecules:
        alone = _per_atom(s.subject, atoms, per_atom)
        ghosted = _per_atom(s.subject, with_ghost(atoms, symbol, facts.reach), per_atom)
        for name, value in alone.items():
            moved = ghosted[name][: len(atoms)]
            scale = max(float(value.abs().max()) if value.numel() else 0.0, tolerances.SCALE_FLOOR)
            error = float((moved - value).abs().max()) / scale if value.numel() else 0.0
            error = error if np.isfinite(error) else np.inf
            total = max(total, error)
            if error >= worst:
                worst, where = error, f"{name} on {label} + a {symbol} ghost"
    return [("locality", Measured(worst, total, where))]


def _per_atom(subject, atoms: ase.Atoms, names: list[str]) -> dict[str, torch.Tensor]:
    """Per-atom outputs, plus ``d<energy>/dx`` for each energy when differentiable."""
    batch = Batch.from_ase([atoms], dtype=subject.dtype)
    if not subject.facts.differentiable:
        out = detached(subject(batch))
        return {name: out[name] for name in names}
    positions = batch.positions.detach().clone().requires_grad_(True)
    out = subject(batch.replace(positions=positions))
    result = {name: out[name].detach() for name in names}
    for name in subject.facts.energies:
        if out[name].requires_grad:
            # An energy that needs grad through weights only (e.g. read from species alone)
            # does not depend on positions: its gradient is zero, not an autograd error.
            (grad,) = torch.autograd.grad(
                out[name].sum(), positions, retain_graph=True, allow_unused=True
            )
            result[f"d{name}/dx"] = (
                torch.zeros_like(positions) if grad is None else grad.detach()
            )
    return result


def strained(atoms: ase.Atoms, strain: np.ndarray) -> ase.Atoms:
    """Cell and positions deformed by ``(I + strain)`` (rows are vectors)."""
    deform = np.eye(3) + strain
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ deform, scale_atoms=False)
    out.positions = atoms.positions @ deform
    return out


def stress_check(s: Sample) -> Rows:
    """Stress against ``(1/V) dE/d(strain)`` by a five-point central difference in each
    of the six symmetric strain components, on every fully periodic sampled cell."""
    subject = s.subject
    if subject.stress_of is None or subject.energy_of is None:
        return Skip("the model produces no stress (verify a checkpoint or a calculator)")
    cells = [(label, atoms) for label, atoms in s.structures if atoms.pbc.all()]
    if not cells:
        return Skip("no periodic cell sampled")
    h = tolerances.STRAIN_STEP
    worst, total, where = 0.0, 0.0, ""
    for label, atoms in cells:
        stress = subject.stress_of(atoms.copy())
        if stress is None:
            return Skip("the calculator does not implement stress")
        numeric = np.zeros((3, 3))
        for i in range(3):
            for j in range(i, 3):
                unit = np.zeros((3, 3))
                unit[i, j] = unit[j, i] = 0.5 if i != j else 1.0

                def energy(step: float) -> float:
                    return subject.energy_of(strained(atoms, step * unit))

                derivative = (
                    -energy(2 * h) + 8 * energy(h) - 8 * energy(-h) + energy(-2 * h)
                ) / (12 * h)
                # eps_ij = eps_ji = step / 2 together: d/d(step) is dE/d(eps_ij) itself.
                numeric[i, j] = numeric[j, i] = derivative
        numeric /= abs(atoms.get_volume())
        scale = max(float(np.abs(stress).max()), tolerances.SCALE_FLOOR)
        error = float(np.abs(stress - numeric).max()) / scale
        error = error if np.isfinite(error) else np.inf
        total += error / len(cells)
        if error >= worst:
            worst, where = error, f"stress vs dE/d(strain)/V on {label}"
    return [("stress", Measured(worst, total, where))]


CHECKS: tuple[Check, ...] = (
    Check(
        "locality",
        "claimed for extensive models (local graph, no per-structure coupling)",
        _extensive,
        _exact,
        locality_check,
        "a hidden range beyond the cutoff: a ghost atom beyond the reach of every atom "
        "moves no force",
    ),
    Check(
        "extensivity",
        "claimed for extensive models; measured otherwise",
        _extensive,
        _exact,
        extensivity_check,
        "two far copies and a 2x supercell give twice the energy (a per-structure term, "
        "a mean, a normalisation over the structure do not)",
    ),
    Check(
        "stress",
        "claimed wherever stress is produced",
        lambda f: True,
        lambda f: tolerances.CONSERVATIVE_RTOL,
        stress_check,
        "stress is the strain derivative of the energy per volume (a wrong sign, volume "
        "or missing term)",
    ),
)
