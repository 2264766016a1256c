"""Blame: which block of a compiled model breaks the symmetry its type declares.

When a symmetry claim fails, the model is run once on the sampled batch and once on
the batch moved by the group element that failed, recording what every block writes.
Each written field must move as its declared irreps say (the type trace's rows); the
first block whose output does not, although everything it read did, is the one that
lied about its type. Both runs share one topology (it is invariant under rotations and
translations), so edge fields line up row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geocompose.verification import actions, groups, tolerances
from geocompose.verification.report import Verdict, VerificationReport

# The checks whose failure blame explains, with the group element each one samples.
ACTIONS = ("rotation", "reflection", "translation")

# Intermediate fields are compared like outputs, to the exact tolerance times this
# margin: a block's features pass through a few more float64 operations than outputs.
MARGIN = 100.0


@dataclass(frozen=True)
class Blame:
    """The first block whose output breaks its declared type.

    Args:
        index: the block's position in the pipeline (0 is the graph builder).
        knob: its blueprint path, e.g. ``interactions[1]``.
        block: its registered type, e.g. ``schnet``.
        field: the field it wrote that does not transform as declared.
        declared: that field's declared type.
        action: the group element it fails under (rotation, reflection, translation).
        error: the field's relative error under that element.
    """

    index: int
    knob: str
    block: str
    field: str
    declared: str
    action: str
    error: float

    def text(self) -> str:
        return (
            f"block {self.index} ({self.block}, {self.knob}) writes {self.field} that breaks its "
            f"declared type {self.declared} under {self.action} (error {self.error:.1e})"
        )


def failed_symmetries(report: VerificationReport) -> list[str]:
    """The failed checks blame can explain, in battery order."""
    return [c.name for c in report.checks if c.name in ACTIONS and c.verdict is Verdict.FAIL]


def first_broken_block(subject, sample, failing: list[str]) -> Blame | None:
    """The first block of ``subject.module`` whose written field breaks its type under
    the group elements of the ``failing`` checks; None when every block's outputs
    transform as declared (the fault is then in the strategy or the claim)."""
    model = subject.module
    gen = torch.Generator().manual_seed(sample.seed + 7)
    rows = model.trace.rows
    tol = MARGIN * tolerances.exact_rtol(torch.float64)
    for action in failing:
        rotation, shift = _element(action, gen)
        base, moved = _block_writes(model, sample.batch, rotation, shift)
        if base is None:
            return None
        for index, row in enumerate(rows):
            for field, ftype in row.writes.items():
                if ftype.irreps is None or field not in base[index]:
                    continue
                expected = actions.transform_outputs(
                    {field: base[index][field]}, {field: ftype}, rotation, shift
                )[field]
                error = _relative(moved[index][field], expected)
                if error > tol:
                    return Blame(index, row.knob, row.label, field, str(ftype), action, error)
    return None


def _element(action: str, gen: torch.Generator):
    if action == "translation":
        return torch.eye(3, dtype=torch.float64), groups.translation(gen)
    if action == "rotation":
        return groups.haar_rotation(gen), None
    return groups.improper_rotation(gen), None


def _relative(observed: torch.Tensor, expected: torch.Tensor) -> float:
    if expected.numel() == 0:
        return 0.0
    scale = max(float(expected.abs().max()), tolerances.SCALE_FLOOR)
    error = float((observed - expected).abs().max()) / scale
    return error if error == error else float("inf")  # NaN counts as broken


def _block_writes(model, batch, rotation, shift):
    """What each block wrote, on ``batch`` and on the moved batch (one call each), or
    (None, None) when some block runs more than once per call (frame strategies)."""
    records: list[list[dict]] = [[] for _ in model.blocks]

    def recorder(i: int):
        def record(module, args, out):
            records[i].append({k: v.detach() for k, v in out.items()})

        return record

    hooks = [block.register_forward_hook(recorder(i)) for i, block in enumerate(model.blocks)]
    try:
        model(batch)
        moved = actions.transform_batch(batch, rotation, shift)
        # Same topology (invariant under the action): edge rows correspond one to one.
        moved = batch.same_topology(positions=moved.positions, cell=moved.cell)
        model(moved)
    finally:
        for hook in hooks:
            hook.remove()
    if any(len(r) != 2 for r in records):
        return None, None
    return [r[0] for r in records], [r[1] for r in records]


__all__ = ["ACTIONS", "Blame", "failed_symmetries", "first_broken_block"]
