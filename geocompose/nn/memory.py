"""Peak memory of a model call, estimated before it runs, and a clear refusal.

A call's memory is dominated by what autograd saves for the backward pass of the
forces (or of training), and that grows with the edges: each layer keeps a few
(E, width) tensors. So the estimate is per edge and per atom, measured once per model
on a small probe cut from the batch itself (so it has the model's species and the
batch's density): every tensor saved for backward during one call on the probe is
counted once (by storage) and split by its leading dimension into per-atom and
per-edge bytes (anything else, e.g. triplets, is charged to the edges it grows
with). The peak is that times :data:`PEAK_OVER_SAVED`, which covers the gradients
alive during the backward pass on top of the saved tensors; it was fitted on SchNet,
PaiNN and MACE (``benchmarks/scaling.py`` prints estimate and measured peak side by
side).

A batch whose estimate exceeds the memory the machine has available is refused with
one line (:class:`~geocompose.errors.MemoryRefusal`) instead of an allocator error
minutes into the call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geocompose.data.batch import Batch
from geocompose.errors import MemoryRefusal
from geocompose.types import fields as F

__all__ = ["MemoryProfile", "available_bytes", "check_memory", "estimate_peak", "profile"]

PEAK_OVER_SAVED = 1.25
"""Peak over saved-for-backward bytes. Fitted on the quiet machine
(``benchmarks/scaling.py``, forward+forces, 2 threads) so that the estimate is 1.03-1.11x
the measured peak of SchNet, PaiNN and MACE at 2,048 and 8,788 Cu atoms: an estimate
that errs high refuses a batch that would have fit (1.7, the first fit, refused MACE at
32,000 atoms, which runs in 17.6 GiB); one that errs low lets the allocator fail minutes
into the call. Only batches above :data:`CHECK_ABOVE_EDGES` are checked."""
PROBE_ATOMS = 48
"""Atoms in the probe: enough edges per atom to be representative, cheap to run."""

CHECK_ABOVE_EDGES = 200_000
"""Batches with fewer edges are not checked (they fit any machine this runs on)."""


@dataclass(frozen=True)
class MemoryProfile:
    """Bytes saved for backward per edge and per atom by one model call."""

    per_edge: float
    per_atom: float

    def peak(self, atoms: int, edges: int) -> float:
        """Estimated peak bytes of a call on ``atoms`` atoms and ``edges`` edges."""
        return PEAK_OVER_SAVED * (self.per_edge * edges + self.per_atom * atoms)


def probe_batch(batch: Batch, atoms: int = PROBE_ATOMS) -> Batch:
    """The ``atoms`` atoms of the first structure nearest its first atom, periodic
    images included, as one open cluster (a molecule: no cell)."""
    start, stop = batch.ranges()[0]
    positions = batch.positions[start:stop].detach()
    cell, pbc = batch.cell[0], batch.pbc[0]
    # Images of the cell's atoms in the 27 neighbouring cells, so that a small periodic
    # cell still gives a cluster of the crystal's density.
    reps = torch.tensor([-1, 0, 1], dtype=positions.dtype)
    grid = torch.cartesian_prod(reps, reps, reps) * pbc.to(positions.dtype)  # (27, 3)
    images = (positions[None] + (grid @ cell)[:, None]).reshape(-1, 3)
    numbers = batch.atomic_numbers[start:stop].repeat(len(grid))
    nearest = torch.argsort((images - positions[0]).norm(dim=1))[:atoms]
    count = len(nearest)
    return Batch(
        images[nearest],
        numbers[nearest],
        torch.zeros(count, dtype=torch.long),
        torch.zeros((1, 3, 3), dtype=positions.dtype),
        torch.zeros((1, 3), dtype=torch.bool),
    )


def profile(model: torch.nn.Module, probe: Batch) -> MemoryProfile:
    """Saved-for-backward bytes per edge and per atom of one call of ``model`` on ``probe``."""
    edges = int(model.graph.topology(probe)[F.EDGE_INDEX].shape[1])
    atoms = probe.num_atoms
    seen: dict[int, tuple[int, int]] = {}  # storage address -> (bytes, leading dimension)

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.layout == torch.strided and tensor.device.type != "meta":
            storage = tensor.untyped_storage()
            leading = tensor.shape[0] if tensor.dim() else 0
            seen.setdefault(storage.data_ptr(), (storage.nbytes(), leading))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(probe)
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    per_atom = sum(n for ptr, (n, lead) in seen.items() if lead == atoms and ptr not in weights)
    rest = sum(n for ptr, (n, lead) in seen.items() if lead != atoms and ptr not in weights)
    return MemoryProfile(per_edge=rest / max(edges, 1), per_atom=per_atom / max(atoms, 1))


def available_bytes() -> int | None:
    """Memory the machine can still give (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def estimate_peak(model: torch.nn.Module, batch: Batch) -> tuple[float, int]:
    """``(peak bytes, edges)`` of ``model(batch)``, estimated before it runs; the model's
    profile is measured on a probe from ``batch`` at the first call and kept."""
    edges = int(model.graph.topology(batch)[F.EDGE_INDEX].shape[1])
    key = (model.dtype, model.training)
    profiles = model.__dict__.setdefault("_memory_profiles", {})
    if key not in profiles:
        profiles[key] = profile(model, probe_batch(batch))
    return profiles[key].peak(batch.num_atoms, edges), edges


def check_memory(model: torch.nn.Module, batch: Batch, name: str = "the model") -> None:
    """Refuse, in one line, a call whose estimated peak exceeds the available memory."""
    if batch.num_atoms == 0 or batch.positions.device.type != "cpu":
        return
    edges = int(model.graph.topology(batch)[F.EDGE_INDEX].shape[1])
    if edges < CHECK_ABOVE_EDGES:
        return
    available = available_bytes()
    if available is None:
        return
    peak, edges = estimate_peak(model, batch)
    if peak > available:
        gib = 2**30
        raise MemoryRefusal(
            f"{name} on {batch.num_atoms:,} atoms ({edges:,} edges) needs about "
            f"{peak / gib:.1f} GiB, more than the {available / gib:.1f} GiB available: "
            "use fewer atoms per batch (or structures per call), or a machine with more memory"
        )
