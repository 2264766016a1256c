#!/usr/bin/env python
"""Run an exported geocompose potential with torch, numpy, vesin and ASE's file reader
only: no geocompose import, no blueprint, no YAML.

    python examples/run_exported.py model.pt2 structures.extxyz [INDEX]

prints the energy (eV) and the largest force component (eV/Å) of each structure. The
exported graph starts after the neighbour list (see geocompose/train/export.py); this
script builds the list with vesin, using the graph cutoff stored in the file.
"""

from __future__ import annotations

import json
import sys

import ase.io
import numpy as np
import torch
import vesin


def neighbours(atoms, cutoff: float):
    """(2, E) edge index [sender j, receiver i] and (E, 3) integer shifts, receiver-sorted."""
    periodic = bool(atoms.pbc.all())
    if atoms.pbc.any() and not periodic:
        raise SystemExit("this example handles fully periodic cells and molecules only")
    box = atoms.cell.array if periodic else np.zeros((3, 3))
    i, j, shifts = vesin.NeighborList(cutoff=cutoff, full_list=True).compute(
        points=atoms.positions, box=box, periodic=periodic, quantities="ijS"
    )
    order = np.lexsort((j, i))
    return (
        torch.from_numpy(np.stack([j[order], i[order]]).astype(np.int64)),
        torch.from_numpy(np.asarray(shifts)[order].astype(np.int64)),
    )


def evaluate(path: str, structures) -> list[tuple[float, np.ndarray]]:
    extra = {"geocompose.json": ""}
    program = torch.export.load(path, extra_files=extra)
    meta = json.loads(extra["geocompose.json"])
    module = program.module()
    dtype = getattr(torch, meta["dtype"])
    results = []
    for atoms in structures:
        edge_index, shifts = neighbours(atoms, meta["graph"]["cutoff"])
        positions = torch.tensor(atoms.positions, dtype=dtype, requires_grad=meta["conservative"])
        inputs = (
            positions,
            torch.tensor(atoms.numbers, dtype=torch.int64),
            torch.zeros(len(atoms), dtype=torch.int64),
            torch.tensor(np.asarray(atoms.cell.array)[None], dtype=dtype),
            torch.tensor(np.asarray(atoms.pbc)[None]),
            edge_index,
            shifts,
        )
        outs = module(*inputs)
        energy = outs[0][0]
        if meta["conservative"]:
            (grad,) = torch.autograd.grad(energy, positions)
            forces = -grad
        else:
            forces = outs[1]
        results.append((float(energy), forces.detach().numpy()))
    return results


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    structures = ase.io.read(argv[1], index=argv[2] if len(argv) == 3 else ":")
    for k, (energy, forces) in enumerate(evaluate(argv[0], structures)):
        print(f"{k} {energy:.12f} {np.abs(forces).max():.12f}")


if __name__ == "__main__":
    main()
