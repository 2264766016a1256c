"""A mace-torch MACE model with random weights, as an ASE calculator: a peer to verify.

Built here, never downloaded: ``ScaleShiftMACE`` (the class of MACE's published
potentials) with small settings (2 interactions, 16x0e+16x1o hidden features,
l_max 2, correlation 3, cutoff 5 Å) for H, C, O and Cu, weights from
``torch.manual_seed(seed)``, wrapped in mace-torch's own ``MACECalculator``. mace-torch
pins e3nn 0.4.4, so this module runs in its own virtual environment, and
``geocompose verify`` drives it through a worker process::

    geocompose verify --python /work/venvs/mace/bin/python \\
        --calculator benchmarks.peers.mace_calculator:mace_calculator \\
        --species H C O Cu --cutoff 5 --reach 10 --smooth

(run from the repository root, so that ``benchmarks.peers`` is importable). It imports
mace, e3nn and torch only, never geocompose.
"""

from __future__ import annotations

import numpy as np
import torch

SPECIES = {"H": 1, "C": 6, "O": 8, "Cu": 29}


def mace_model(
    seed: int = 0, dtype: str = "float64", r_max: float = 5.0, built_in: str | None = None
) -> torch.nn.Module:
    """A small ``ScaleShiftMACE`` with weights drawn from ``seed``, in ``dtype``.

    mace-torch computes its Clebsch-Gordan and symmetric-contraction coefficients in
    torch's default dtype when the model is built, so (like mace-torch's own training
    script) the default dtype is ``dtype`` while building; ``built_in="float32"`` builds
    under float32 and casts afterwards, which keeps float32 coefficients in a float64
    model (docs/verification.md measures what that costs).
    """
    from e3nn import o3
    from mace import modules

    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, built_in or dtype))
    try:
        return _build(modules, o3, seed, r_max).to(getattr(torch, dtype)).eval()
    finally:
        torch.set_default_dtype(previous)


def _build(modules, o3, seed: int, r_max: float) -> torch.nn.Module:
    torch.manual_seed(seed)
    interaction = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    symbols = sorted(SPECIES, key=SPECIES.get)
    return modules.ScaleShiftMACE(
        r_max=r_max,
        num_bessel=8,
        num_polynomial_cutoff=6,
        max_ell=2,
        interaction_cls=interaction,
        interaction_cls_first=interaction,
        num_interactions=2,
        num_elements=len(symbols),
        hidden_irreps=o3.Irreps("16x0e + 16x1o"),
        MLP_irreps=o3.Irreps("16x0e"),
        # Isolated-atom energies zero: a published potential's (~-1e3 eV per atom) would
        # dwarf the network's part, and every relative energy figure with it.
        atomic_energies=np.zeros(len(symbols)),
        avg_num_neighbors=8.0,
        atomic_numbers=[SPECIES[s] for s in symbols],
        correlation=3,
        gate=torch.nn.functional.silu,
        radial_MLP=[32, 32],
        atomic_inter_scale=1.0,
        atomic_inter_shift=0.0,
    )


def mace_calculator(
    seed: int = 0, dtype: str = "float64", r_max: float = 5.0, built_in: str | None = None
):
    """mace-torch's ``MACECalculator`` around :func:`mace_model` (CPU, one thread)."""
    from mace.calculators import MACECalculator

    torch.set_num_threads(1)
    model = mace_model(seed, dtype, r_max, built_in)
    return MACECalculator(models=model, device="cpu", default_dtype=dtype)
