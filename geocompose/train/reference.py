"""Per-species reference energies by least squares, and the network's energy scale.

Total energies are dominated by a per-element constant (the energy of an isolated atom
in the reference method plus its average environment). Fitting

    E_s  ~  sum_k n_sk e_k          (n_sk: atoms of species k in structure s)

by least squares on the training split and subtracting it leaves the network a residual
of order the *interaction* energy. The shift is fixed, not trained (as in NequIP's and
MACE's "E0s"). A species absent from the training split gets ``e_k = 0`` (the minimum-
norm solution), so it adds nothing rather than a guess.

A blueprint may carry its own references as a ``reference_energies`` readout (given
values, or ``fit``): :func:`resolve_reference` then fills that term and leaves the
potential no shift of its own, so the energy holds one set of references either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import torch

from geocompose.data.dataset import Dataset
from geocompose.nn.readout.reference_energies import ReferenceEnergies
from geocompose.errors import StructureError

__all__ = ["fit_reference", "force_scale", "resolve_reference"]


def fit_reference(data: Dataset, indices: Sequence[int], species: Sequence[str]) -> np.ndarray:
    """(len(species),) reference energies in eV from the structures ``indices``.

    Raises:
        StructureError: a structure without an energy.
    """
    subset = data.subset(indices)
    if not subset.has("energy"):
        raise StructureError(
            "fitting reference energies needs an energy on every training structure"
        )
    counts = subset.composition(species)  # (S, K)
    energies = np.array([r.energy for r in subset.records])  # (S,)
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return solution


def force_scale(
    data: Dataset, indices: Sequence[int], reference: np.ndarray, species: Sequence[str]
) -> float:
    """The network's energy unit: RMS of the training forces (eV/Å, so one unit of
    network output per Å), or without forces the RMS per-atom residual energy; 1.0 when
    either is degenerate (zero)."""
    subset = data.subset(indices)
    if subset.has("forces"):
        forces = np.concatenate([r.forces for r in subset.records])
        value = float(np.sqrt(np.mean(forces**2)))
    else:
        residual = (
            np.array([r.energy for r in subset.records]) - subset.composition(species) @ reference
        )
        atoms = np.array([len(r) for r in subset.records])
        value = float(np.sqrt(np.mean((residual / atoms) ** 2)))
    return value if np.isfinite(value) and value > 1e-8 else 1.0


def resolve_reference(
    model: torch.nn.Module, data: Dataset, indices: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(the potential's own shift, the references in force) per species, in eV.

    Without a ``reference_energies`` term in ``model`` both are the least-squares fit.
    With one, a ``fit`` term is filled with it (given values are kept), and the
    potential's own shift is zero.
    """
    species = list(model.species)
    terms = [m for m in model.modules() if isinstance(m, ReferenceEnergies)]
    if not terms:
        fitted = fit_reference(data, indices, species)
        return fitted, fitted
    in_force = np.zeros(len(species))
    for term in terms:
        if term.fitted:
            values = fit_reference(data, indices, species) - in_force
            with torch.no_grad():
                term.e0.copy_(torch.from_numpy(values))
        in_force = in_force + term.e0.detach().cpu().double().numpy()
    return np.zeros(len(species)), in_force
