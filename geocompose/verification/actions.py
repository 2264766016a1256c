"""How group elements act on inputs (batches) and on outputs (by their irreps)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from geocompose.data.batch import Batch
from geocompose.types import FieldType, Level
from geocompose.types.irreps import wigner_d

Outputs = Mapping[str, torch.Tensor]


def transform_batch(
    batch: Batch, rotation: torch.Tensor, shift: torch.Tensor | None = None
) -> Batch:
    """x -> R x + t for positions, rows of the cell rotated (the lattice moves with the atoms)."""
    positions = batch.positions @ rotation.T
    if shift is not None:
        positions = positions + shift
    return batch.replace(positions=positions, cell=batch.cell @ rotation.T)


def transform_outputs(
    outputs: Outputs,
    types: Mapping[str, FieldType],
    rotation: torch.Tensor,
    shift: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """What each output must become: ``y -> D(R) y`` by its irreps (+ t if it translates).

    e3nn's ``D_from_matrix`` includes the parity factor for improper R, so a ``1e``
    output is left unchanged by the inversion and a ``1o`` output flips.
    """
    expected = {}
    for name, value in outputs.items():
        ftype = types[name]
        if ftype.irreps is None:
            expected[name] = value
            continue
        d = wigner_d(ftype.irreps, rotation).to(value.dtype)
        moved = value @ d.T
        if ftype.translates and shift is not None:
            moved = moved + shift
        expected[name] = moved
    return expected


def permute_batch(batch: Batch, perm: torch.Tensor) -> Batch:
    """Reorder atoms (within their structures): new atom i is old atom perm[i]."""
    return batch.replace(positions=batch.positions[perm], atomic_numbers=batch.atomic_numbers[perm])


def permute_outputs(
    outputs: Outputs, types: Mapping[str, FieldType], perm: torch.Tensor
) -> dict[str, torch.Tensor]:
    return {
        name: value[perm] if types[name].level is Level.NODE else value
        for name, value in outputs.items()
    }


def wrap_batch(batch: Batch, cell_change: torch.Tensor) -> tuple[Batch, torch.Tensor]:
    """Wrap atoms into an equivalent cell ``M_b @ cell_b`` (``cell_change``: (B, 3, 3));
    returns the batch and each atom's displacement (a lattice vector), which
    position-like outputs inherit."""
    cells = cell_change.to(batch.cell.dtype) @ batch.cell  # (B, 3, 3)
    cell_of_atom = cells[batch.batch]  # (N, 3, 3)
    pbc = batch.pbc[batch.batch]  # (N, 3)
    frac = torch.linalg.solve(cell_of_atom.transpose(1, 2), batch.positions.unsqueeze(-1)).squeeze(
        -1
    )
    shift_frac = torch.where(pbc, -torch.floor(frac), torch.zeros_like(frac))
    displacement = torch.einsum("nk,nkc->nc", shift_frac, cell_of_atom)
    return batch.replace(positions=batch.positions + displacement, cell=cells), displacement
