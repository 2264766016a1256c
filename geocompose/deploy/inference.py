"""One way for every engine to load a checkpoint and to refuse what a model cannot do.

The ASE calculator, the TorchSim model, the LAMMPS driver and the i-PI client all go
through :func:`load_for_inference` and :func:`check_structures`, so a model gets the
same dtype rules, the same per-atom energies and the same one-line errors whichever
engine runs it.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from ase.calculators.calculator import PropertyNotImplementedError

from geocompose.errors import GeocomposeError, StructureError
from geocompose.train.checkpoint import DTYPES, build_potential, load_checkpoint
from geocompose.train.potential import Potential
from geocompose.types import fields as F

__all__ = [
    "DeployError",
    "StressUnavailable",
    "check_structures",
    "load_for_inference",
    "resolve_dtype",
]


class DeployError(GeocomposeError):
    """A setting of an engine adapter that cannot work (dtype, species map, input file)."""


class StressUnavailable(StructureError, PropertyNotImplementedError):
    """Stress asked for a structure that is not periodic along all three axes.

    Also an ASE ``PropertyNotImplementedError``, so ASE filters and optimisers that
    probe for stress see the exception they expect.
    """


def resolve_dtype(
    dtype: str | torch.dtype | None, default_dtype: str | None = None, fallback: str = "float64"
) -> torch.dtype:
    """The dtype an engine asked for, by name or as a torch dtype.

    Args:
        dtype: ``"float32"``, ``"float64"``, a torch dtype, or None for ``default_dtype``.
        default_dtype: ml-peg's and mace-torch's keyword for the same thing.
        fallback: the checkpoint's own dtype name, used when neither is given.

    Raises:
        DeployError: an unknown name, or ``dtype`` and ``default_dtype`` that disagree.
    """
    names = {torch.float32: "float32", torch.float64: "float64"}
    asked = [names.get(d, d) if isinstance(d, torch.dtype) else d for d in (dtype, default_dtype)]
    for value in asked:
        if value is not None and value not in DTYPES:
            raise DeployError(f"dtype {value!r} is not one of {', '.join(DTYPES)}")
    if asked[0] is not None and asked[1] is not None and asked[0] != asked[1]:
        raise DeployError(f"dtype={asked[0]!r} and default_dtype={asked[1]!r} disagree")
    return DTYPES[asked[0] or asked[1] or fallback]


def _with_atomic_energies(blueprint: dict) -> dict:
    """The blueprint with its ``sum`` energy readout writing its per-atom terms.

    ``per_atom`` adds an output, not a weight, so the checkpoint's weights still load.
    A ``mean`` (or any other) energy readout is left alone: its per-atom terms would not
    sum to the energy.
    """
    energy = blueprint.get("readout", {}).get(F.ENERGY)
    if not isinstance(energy, dict) or energy.get("type") != "sum" or energy.get("per_atom"):
        return blueprint
    blueprint = copy.deepcopy(blueprint)
    blueprint["readout"][F.ENERGY]["per_atom"] = F.ATOMIC_ENERGY
    return blueprint


def load_for_inference(
    checkpoint: str | Path | Potential,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device = "cpu",
    averaged: bool = True,
) -> Potential:
    """A checkpoint's potential in eval mode, compiled in ``dtype``, on ``device``.

    Loading from a file compiles the blueprint in the asked dtype (the weights are cast
    when loaded) and switches on the energy readout's per-atom terms
    (``atomic_energy``), which ASE reports as ``energies``. A :class:`Potential` passed
    in is cast with ``.to(dtype)`` and keeps the outputs it has.

    Args:
        checkpoint: a file written by ``geocompose train``, or a Potential.
        dtype: ``"float32"``/``"float64"``/torch dtype; None keeps the checkpoint's.
        device: where the potential runs.
        averaged: use the averaged (EMA) weights when the checkpoint has them.
    """
    if isinstance(checkpoint, Potential):
        potential = checkpoint
        if dtype is not None:
            potential = potential.to(resolve_dtype(dtype))
    else:
        state = load_checkpoint(checkpoint)
        target = resolve_dtype(dtype, fallback=state["dtype"])
        name = {v: k for k, v in DTYPES.items()}[target]
        state = {**state, "dtype": name, "blueprint": _with_atomic_energies(state["blueprint"])}
        potential = build_potential(state, averaged, where=str(checkpoint))
    return potential.to(device).eval()


def check_structures(
    potential: Potential, atomic_numbers: torch.Tensor, pbc: torch.Tensor, stress: bool
) -> None:
    """Refuse, before any work, what the model cannot compute: the same message in
    every engine.

    Args:
        atomic_numbers: (N,) of all structures.
        pbc: (B, 3) periodicity of each structure.
        stress: whether stress is asked.

    Raises:
        StructureError: a species the model was not trained on.
        StressUnavailable: stress for a structure not periodic along all three axes.
    """
    # The model's own check, so its message is the one every engine prints.
    potential.model.species_index(atomic_numbers.to(potential.model.species_of_z.device))
    if stress and pbc.numel() and not bool(pbc.all()):
        bad = int((~pbc.all(dim=1)).nonzero()[0])
        raise StressUnavailable(
            f"stress needs a cell periodic along all three axes; structure {bad} has "
            f"pbc={[bool(p) for p in pbc[bad].tolist()]}"
        )
