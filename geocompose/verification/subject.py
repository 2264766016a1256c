"""What is verified: a model as a function of a batch, and the facts that set its claims.

For a compiled model the facts are read from its type trace (the compiler derived them
from the blocks); for a black box (an ASE calculator, an export) they come from the
command line. The checks never look inside the model beyond these facts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import ase
import numpy as np
import torch

from geocompose.compiler import recompiled
from geocompose.data.batch import Batch
from geocompose.errors import GeocomposeError
from geocompose.types import FieldType
from geocompose.types.claims import Claims, claims_of
from geocompose.types.group import Group

Outputs = Mapping[str, torch.Tensor]


@dataclass
class Facts(Claims):
    """What a model claims and can do; each check's ``when`` reads these.

    The claims (:class:`~geocompose.types.claims.Claims`), plus:

    Args:
        name: the model's name (report title).
        species: chemical symbols it accepts (samples are drawn from these).
        stress: the output that is the strain derivative of the energy per volume, if any.
        differentiable: outputs can be differentiated w.r.t. positions by autograd.
        weights: number of weights (0 when unknown).
    """

    name: str
    species: tuple[str, ...]
    stress: str | None = None
    differentiable: bool = True
    weights: int = 0

    @property
    def geometric(self) -> bool:
        """Rotations and translations are claimed (O(3) or SO(3))."""
        return self.claim in (Group.O3, Group.SO3)

    @property
    def energies(self) -> list[str]:
        """Per-structure scalar outputs (energies and the like)."""
        return [n for n, t in self.outputs.items() if t.level.value == "structure" and t.is_scalar]


@dataclass
class Subject:
    """A model to verify: ``run(batch) -> outputs`` in ``dtype``, with its facts.

    Args:
        run: the model as a function; it must not keep state between calls.
        facts: its claims and capabilities.
        dtype: the dtype batches are given in (float64 for exact claims).
        module: the compiled model, when there is one (blame re-checks its blocks).
        at_dtype: the same model in another dtype (the deployment-precision check).
        energy_of: one structure's energy in eV, for the stress check.
        stress_of: one periodic structure's (3, 3) stress (eV/Å^3, ASE's sign), or
            None where it is not implemented; the stress check needs both.
    """

    run: Callable[[Batch], Outputs]
    facts: Facts
    dtype: torch.dtype = torch.float64
    module: torch.nn.Module | None = None
    at_dtype: Callable[[torch.dtype], Subject] | None = None
    energy_of: Callable[[ase.Atoms], float] | None = None
    stress_of: Callable[[ase.Atoms], np.ndarray | None] | None = None

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        return dict(self.run(batch))

    @property
    def outputs(self) -> dict[str, FieldType]:
        return self.facts.outputs


def facts_from_trace(trace, species, weights: int) -> Facts:
    """A compiled model's facts, as its compiler derived them."""
    return Facts(name=trace.name, species=tuple(species), weights=weights, **claims_of(trace))


def compiled_subject(
    model: torch.nn.Module, dtype: torch.dtype = torch.float64, own: bool = False
) -> Subject:
    """A compiled ``GeometricModel``, cast to ``dtype``; copied first unless ``own`` (the
    verifier compiled it itself), so a caller's model is never modified.

    Raises:
        GeocomposeError: the model carries no type trace (it was not compiled).
    """
    trace = getattr(model, "trace", None)
    if trace is None:
        raise GeocomposeError(
            f"model '{getattr(model, 'name', type(model).__name__)}' has no type trace: "
            "verify a compiled model (geocompose.compile) or use verify_module for a bare nn.Module"
        )
    # A copy (unless the verifier compiled it itself), rebuilt when widened: a cast alone
    # would keep a float32 build's rounded constants (compiler.recompiled).
    model = (model.to(dtype) if own else recompiled(model, dtype)).eval()
    facts = facts_from_trace(trace, model.species, sum(p.numel() for p in model.parameters()))

    @functools.cache
    def at_dtype(other: torch.dtype) -> Subject:
        # One copy per dtype serves all five float32 rows (a copy of the mace blueprint
        # costs 0.19 s of CPU; each row used to make its own).
        return compiled_subject(model, other)

    return Subject(run=model, facts=facts, dtype=dtype, module=model, at_dtype=at_dtype)
