"""The record of one check, and the sample every check draws from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from geocompose.data.batch import Batch
from geocompose.verification.checks import Measured
from geocompose.verification.subject import Facts, Subject


@dataclass
class Sample:
    """The structures and the random stream every check draws from.

    Args:
        subject: the model under test.
        structures: generic structures (random molecules, cells, a slab, a bulk metal).
        symmetric: structures whose PCA frames are degenerate (frame strategies only).
        batch: ``structures`` as one batch; ``labels`` name its structures.
        gen: the shared torch generator (group elements, displacements).
        seed: the verification seed (checks that need their own stream derive it).
    """

    subject: Subject
    structures: list
    symmetric: list
    batch: Batch
    labels: list[str]
    gen: torch.Generator
    seed: int

    def sub_batch(self, keep: Callable[[int, str, object], bool]) -> tuple[Batch, list[str]]:
        """The structures ``keep(index, label, atoms)`` selects, as a batch and labels."""
        index = [i for i, (label, atoms) in enumerate(self.structures) if keep(i, label, atoms)]
        if not index:
            return Batch.empty(self.batch.positions.dtype), []
        return Batch.concatenate([self.batch.structure(i) for i in index]), [
            self.labels[i] for i in index
        ]


@dataclass(frozen=True)
class Skip:
    """A check that does not apply to this model, and why."""

    reason: str


Rows = list[tuple[str, Measured]] | Skip


@dataclass(frozen=True)
class Check:
    """One check of the battery.

    Args:
        name: the report row (rows of a multi-row check are ``name`` + a suffix).
        when: when it is a claim, in words (docs and ``--list``).
        claimed: the facts → whether the figure is judged (else only measured).
        tolerance: the facts → the bound a claim is held to.
        measure: the sample → rows ``(name, Measured)``, or a Skip.
        why: what it protects against (docs).
    """

    name: str
    when: str
    claimed: Callable[[Facts], bool]
    tolerance: Callable[[Facts], float]
    measure: Callable[[Sample], Rows]
    why: str = ""
