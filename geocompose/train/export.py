"""Export a trained potential with ``torch.export``: a file that runs without the YAML
stack (no blueprint, registry or compiler; only torch).

What is exported, and why not everything: the neighbour list is computed in numpy
(vesin) and is not a torch program, so the exported graph starts *after* it. Its
inputs are

    positions (N, 3), atomic_numbers (N,), batch (N,), cell (B, 3, 3), pbc (B, 3),
    edge_index (2, E) [rows: sender j, receiver i], edge_shifts (E, 3) [integers]

with N, E and B dynamic, and it returns the energy (B,) in eV, plus the forces (N, 3)
for a direct-force model. Conservative forces (``-dE/dx``) and stress are *not* traced
into the graph (``torch.export`` does not trace ``torch.autograd.grad``); the exported
graph is plain differentiable ATen ops, so they are one autograd call on the loaded
program away, which :class:`ExportedPotential` makes.

Metadata (species, cutoff and graph settings, dtype, whether forces are conservative)
travels inside the ``.pt2`` file as ``extra_files["geocompose.json"]``. A loader needs
only ``torch`` and a neighbour list with the conventions above (vesin gives them:
``i`` receiver, ``j`` sender, ``S`` shift); see ``examples/run_exported.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import torch
from torch import nn

from geocompose.data.batch import Batch
from geocompose.errors import GeocomposeError
from geocompose.nn.ops.scatter import scatter_sum
from geocompose.train.potential import Potential
from geocompose.types import fields as F

__all__ = [
    "AfterNeighbours",
    "ExportError",
    "ExportedPotential",
    "export_deviation",
    "export_potential",
    "graph_inputs",
    "trace_after_neighbours",
]

FORMAT = "geocompose.export/1"
METADATA = "geocompose.json"


class ExportError(GeocomposeError):
    """A potential that cannot be exported (e.g. a graph with extra topology fields)."""


class AfterNeighbours(nn.Module):
    """The potential from edge topology onwards: what gets exported."""

    def __init__(self, potential: Potential):
        super().__init__()
        self.potential = potential
        self.direct = potential.has_forces and not potential.conservative
        table = potential.model.species_of_z.clone()
        self.register_buffer("species_of_z", table)

    def evaluate(
        self, positions, atomic_numbers, batch, cell, pbc, edge_index, edge_shifts
    ) -> dict[str, torch.Tensor]:
        """``energy`` (B,) eV; ``atomic_energy`` (N,) eV when the energy readout writes
        its per-atom terms; ``forces`` (N, 3) eV/Å for a direct-force model."""
        model = self.potential.model
        species = self.species_of_z[
            atomic_numbers
        ]  # (N,); unknown species are checked by the caller
        state = {
            F.POSITIONS: positions,
            F.ATOMIC_NUMBERS: atomic_numbers,
            F.SPECIES: species,
            F.BATCH: batch,
            F.CELL: cell,
            F.PBC: pbc,
            F.EDGE_INDEX: edge_index,
            F.EDGE_SHIFTS: edge_shifts,
        }
        out = model.strategy(model._run_inner, state, model.outputs, model.graph)
        scale, reference = self.potential.scale, self.potential.reference
        shift = scatter_sum(reference[species], batch, cell.shape[0])
        result = {F.ENERGY: scale * out[F.ENERGY].reshape(-1) + shift}
        if F.ATOMIC_ENERGY in out:
            result[F.ATOMIC_ENERGY] = scale * out[F.ATOMIC_ENERGY].reshape(-1) + reference[species]
        if self.direct:
            result[F.FORCES] = scale * out[F.FORCES]
        return result

    def forward(self, positions, atomic_numbers, batch, cell, pbc, edge_index, edge_shifts):
        out = self.evaluate(positions, atomic_numbers, batch, cell, pbc, edge_index, edge_shifts)
        if self.direct:
            return out[F.ENERGY], out[F.FORCES]
        return (out[F.ENERGY],)


def graph_inputs(potential: Potential, example: Batch) -> tuple:
    """The exported program's inputs for ``example``: its tensors and its radius graph.

    Raises:
        ExportError: a graph with more than one edge set (e.g. long-range edges).
    """
    topology = potential.model.graph.topology(example)
    extra = set(topology) - {F.EDGE_INDEX, F.EDGE_SHIFTS}
    if extra:
        raise ExportError(
            f"model '{potential.model.name}' uses extra graph topology ({', '.join(sorted(extra))}); "
            "export supports graphs of one edge set"
        )
    return (
        example.positions,
        example.atomic_numbers,
        example.batch,
        example.cell,
        example.pbc,
        topology[F.EDGE_INDEX],
        topology[F.EDGE_SHIFTS],
    )


def export_potential(
    potential: Potential, path: str | Path, example: Batch, graph: dict | None = None
) -> Path:
    """Export ``potential`` to a ``.pt2`` file (``torch.export``, dynamic sizes).

    Args:
        potential: a trained potential (exported in eval mode).
        path: output file.
        example: a batch to trace with, of at least 2 structures (a size-1 example
            would specialise the program to one structure); the program then takes
            any number of structures, atoms and edges.
        graph: the blueprint's ``graph`` settings, stored as metadata for loaders.

    Raises:
        ExportError: the model cannot be traced.
    """
    potential = potential.eval()
    core = AfterNeighbours(potential).eval()
    program = trace_after_neighbours(core, potential, example)
    metadata = {
        "format": FORMAT,
        "name": potential.model.name,
        "species": list(potential.species),
        "dtype": str(potential.model.dtype).removeprefix("torch."),
        "conservative": potential.conservative,
        "direct_forces": core.direct,
        "graph": graph,
        "inputs": [
            "positions",
            "atomic_numbers",
            "batch",
            "cell",
            "pbc",
            "edge_index",
            "edge_shifts",
        ],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, path, extra_files={METADATA: json.dumps(metadata)})
    return path


def trace_after_neighbours(core: nn.Module, potential: Potential, example: Batch):
    """``torch.export`` of ``core`` (an :class:`AfterNeighbours`) on ``example``'s graph
    inputs, with the numbers of atoms, edges and structures dynamic: the one trace that
    both the ``.pt2`` file and the TorchScript twin (:mod:`geocompose.deploy.torchscript`)
    are made of.

    Raises:
        ExportError: an example of fewer than 2 structures, or a model torch.export
            cannot trace (named, with torch's first line).
    """
    from torch.export import Dim

    if example.num_structures < 2:
        raise ExportError(
            "export needs an example batch of at least 2 structures (so their count stays dynamic)"
        )
    # In the potential's dtype: the trace records the dtypes it saw.
    args = graph_inputs(potential, example.to(potential.model.dtype))
    atoms, edges, structures = Dim("atoms", min=1), Dim("edges", min=1), Dim("structures", min=1)
    shapes = (
        {0: atoms},
        {0: atoms},
        {0: atoms},
        {0: structures},
        {0: structures},
        {1: edges},
        {0: edges},
    )
    # On failure torch prints the whole partial graph to stderr (hundreds of lines) before
    # raising; the one-line error below says what failed, so that print is dropped.
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            program = torch.export.export(core, args, dynamic_shapes=shapes, strict=False)
        sys.stderr.write(printed.getvalue())
        return program
    except Exception as err:  # torch raises many kinds; the message is what matters
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        hint = ""
        if type(err).__name__ == "GuardOnDataDependentSymNode":
            hint = (
                " — a block builds sizes from tensor values (e.g. the triplets of DimeNet/"
                "GemNet), which cannot be traced with dynamic sizes"
            )
        raise ExportError(
            f"torch.export failed for '{potential.model.name}': {type(err).__name__}: {first}{hint}"
        ) from err


class ExportedPotential:
    """A ``.pt2`` file written by :func:`export_potential`, loaded with torch only.

    Calling it on the graph inputs returns ``{"energy": (B,), "forces": (N, 3)}`` (and
    ``"stress": (B, 3, 3)`` with ``stress=True``); conservative forces and stress come
    from autograd through the exported program.
    """

    def __init__(self, path: str | Path):
        extra = {METADATA: ""}
        self.program = torch.export.load(path, extra_files=extra)
        self.metadata = json.loads(extra[METADATA])
        self.module = self.program.module()

    def __call__(
        self,
        positions,
        atomic_numbers,
        batch,
        cell,
        pbc,
        edge_index,
        edge_shifts,
        stress: bool = False,
    ):
        with torch.enable_grad():
            strain = None
            if stress:
                strain = torch.zeros_like(cell, requires_grad=True)
                deform = torch.eye(3, dtype=cell.dtype) + 0.5 * (strain + strain.transpose(1, 2))
                positions = torch.einsum("ni,nij->nj", positions, deform[batch])
                cell = torch.bmm(cell, deform)
            elif self.metadata["conservative"]:
                positions = positions.detach().requires_grad_(True)
            outs = self.module(positions, atomic_numbers, batch, cell, pbc, edge_index, edge_shifts)
            result = {"energy": outs[0]}
            if self.metadata["direct_forces"]:
                result["forces"] = outs[1]
            wrt = [
                t
                for t, wanted in ((positions, self.metadata["conservative"]), (strain, stress))
                if wanted
            ]
            if wrt:
                grads = torch.autograd.grad(outs[0].sum(), wrt, allow_unused=True)
                grads = [torch.zeros_like(t) if g is None else g for t, g in zip(wrt, grads)]
                if self.metadata["conservative"]:
                    result["forces"] = -grads[0]
                if stress:
                    result["stress"] = grads[-1] / torch.linalg.det(cell).abs().view(-1, 1, 1)
        return {k: v.detach() for k, v in result.items()}


def export_deviation(potential: Potential, exported: ExportedPotential, batch: Batch) -> dict:
    """Largest absolute difference of each output (energy, forces) between ``potential``
    and its exported program on ``batch``: the check ``geocompose export`` prints."""
    expected = potential(batch)
    got = exported(*graph_inputs(potential, batch))
    return {
        name: float((got[name] - expected[name].detach()).abs().max())
        for name in expected
        if name in got
    }
