"""Per-species reference energies by least squares, and the network's energy scale.

Total energies are dominated by a per-element constant (the energy of an isolated atom
in the reference method plus its average environment). Fitting

    E_s  ~  sum_k n_sk e_k          (n_sk: atoms of species k in structure s)

by least squares on the training split and subtracting it leaves the network a residual
of order the *interaction* energy. The shift is fixed, not trained (as in NequIP's and
MACE's "E0s"). A species absent from the training split gets ``e_k = 0`` (the minimum-
norm solution), so it adds nothing rather than a guess.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from geocompose.data.dataset import Dataset
from geocompose.errors import StructureError

__all__ = ["fit_reference", "force_scale"]


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
