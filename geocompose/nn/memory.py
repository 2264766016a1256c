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
minutes into the call, unless it fits with the model's interaction blocks checkpointed
(``GeometricModel.checkpointing``), and :func:`check_memory` chooses the mode. A
checkpointed call's peak is not a fixed multiple of what it would keep saved (the
rebuilt block's activations and the gradients of its backward pass come on top, in
proportions that depend on the architecture: peak over those saved bytes was 2.0 for
SchNet, 1.4 for PaiNN, 0.95-1.2 for MACE). So its peak is measured, not derived: one
checkpointed call on a probe runs with every tensor it allocates counted while it
lives (:class:`LivePeak`), and the tensors alive at its highest point are split into
per-atom, per-edge and fixed bytes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from geocompose.data.batch import Batch
from geocompose.errors import MemoryRefusal
from geocompose.types import fields as F

__all__ = [
    "LivePeak",
    "MemoryProfile",
    "available_bytes",
    "check_memory",
    "checkpointed_profile",
    "estimate_peak",
    "keep_freed_memory",
    "profile",
]

PEAK_OVER_SAVED = 1.25
"""Peak over saved-for-backward bytes. Fitted on the quiet machine
(``benchmarks/scaling.py``, forward+forces, 2 threads) so that the estimate is 1.03-1.11x
the measured peak of SchNet, PaiNN and MACE at 2,048 and 8,788 Cu atoms: an estimate
that errs high refuses a batch that would have fit (1.7, the first fit, refused MACE at
32,000 atoms, which runs in 17.6 GiB); one that errs low lets the allocator fail minutes
into the call. Only batches above :data:`CHECK_ABOVE_EDGES` are checked."""
CHECKPOINTED_PEAK_OVER_LIVE = 1.25
"""Peak resident memory of a checkpointed call over the tensor bytes alive at its
highest point (:func:`checkpointed_profile`): malloc's overhead and the tensors made
before the call (the edge index). Measured (``benchmarks/scaling.py --checkpointing
always``, 1 thread, 2,048 and 8,788 Cu atoms): 1.09 and 1.11 for SchNet, 1.12 and 1.16
for PaiNN, 1.14 and 1.04 for MACE, so the estimate is 1.08-1.20x the measured peak. It
replaces one factor over saved bytes (2.0, SchNet's; PaiNN's is 1.4, MACE's 0.95-1.2),
which put PaiNN 1.4x and MACE 2.1x above their peaks and refused PaiNN at 97,556 atoms
(24.7 GiB estimated, 15.3 measured)."""
PROBE_ATOMS = 48
"""Atoms in the probe: enough edges per atom to be representative, cheap to run."""
CHECKPOINTED_PROBE_ATOMS = 128
"""Atoms in the probe of a checkpointed call: more edges (~3,300 on Cu at 5 Å) than
any fixed-size work buffer has rows (``nn.ops.message.EDGE_CHUNK``, 2,048), so such a
buffer is told from a tensor that grows with the edges. At 48 atoms (958 edges) PaiNN's
chunk buffers were charged per edge, and its tensor bytes alone, scaled to 2,048 and
8,788 atoms, came to 2.5x its measured peak."""

CHECK_ABOVE_EDGES = 200_000
"""Batches with fewer edges are not checked (they fit any machine this runs on)."""


@dataclass(frozen=True)
class MemoryProfile:
    """Bytes per edge and per atom of one model call (and fixed bytes), measured on a
    probe, and the factor from them to the call's peak."""

    per_edge: float
    per_atom: float
    fixed: float = 0.0
    factor: float = PEAK_OVER_SAVED

    def peak(self, atoms: int, edges: int) -> float:
        """Estimated peak bytes of a call on ``atoms`` atoms and ``edges`` edges."""
        return self.factor * (self.per_edge * edges + self.per_atom * atoms + self.fixed)


def probe_batch(batch: Batch, atoms: int = PROBE_ATOMS) -> Batch:
    """The ``atoms`` atoms of the first structure nearest its first atom, periodic
    images included, as one open cluster (a molecule: no cell)."""
    start, stop = batch.ranges()[0]
    positions = batch.positions[start:stop].detach()
    cell, pbc = batch.cell[0], batch.pbc[0]
    # Images of the cell's atoms in the (up to 27) neighbouring cells along the periodic
    # axes, so that a small periodic cell still gives a cluster of the crystal's density;
    # once each (along an open axis every image would be the atom itself, coincident).
    reps = torch.tensor([-1, 0, 1], dtype=positions.dtype)
    grid = torch.unique(torch.cartesian_prod(reps, reps, reps) * pbc.to(positions.dtype), dim=0)
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


_probing: set[int] = set()
"""``id`` of each model whose probe call runs now: :func:`check_memory` does not check
it (the check would profile the model again, on the probe)."""


@contextmanager
def _probe_call(model: torch.nn.Module, mode: str):
    """The model with ``checkpointing = mode`` and unchecked, for one probe call."""
    saved, model.checkpointing = model.checkpointing, mode
    _probing.add(id(model))
    try:
        yield
    finally:
        model.checkpointing = saved
        _probing.discard(id(model))


def profile(model: torch.nn.Module, probe: Batch) -> MemoryProfile:
    """Saved-for-backward bytes per edge and per atom of one plain call of ``model`` on
    ``probe`` (every saved storage counted once; weights are not)."""
    edges = int(model.graph.topology(probe)[F.EDGE_INDEX].shape[1])
    atoms = probe.num_atoms
    seen: dict[int, tuple[int, int]] = {}  # storage -> (bytes, leading dim)

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.layout == torch.strided and tensor.device.type != "meta":
            storage = tensor.untyped_storage()
            leading = tensor.shape[0] if tensor.dim() else 0
            seen.setdefault(storage.data_ptr(), (storage.nbytes(), leading))
        return tensor

    with _probe_call(model, "never"), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(probe)
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    total = [0.0, 0.0]  # per-edge, per-atom
    for ptr, (size, leading) in seen.items():
        if ptr not in weights:
            total[1 if leading == atoms else 0] += size  # anything else grows with the edges
    return MemoryProfile(per_edge=total[0] / max(edges, 1), per_atom=total[1] / max(atoms, 1))


class LivePeak(TorchDispatchMode):
    """While active, the bytes of the tensors that ops make, counted from allocation
    until their storage is freed, and at the highest total (``peak``) split by leading
    dimension: ``atoms`` rows per atom, ``edges`` or more rows (triplets) per edge,
    fewer rows fixed (a chunk's work buffer, one row per structure). Storages in
    ``exclude`` (the weights, which views share) are not counted. The backward pass
    is counted too: its ops run through the same dispatcher."""

    def __init__(self, atoms: int, edges: int, exclude: set[int] = frozenset()):
        super().__init__()
        self.atoms, self.edges, self.exclude = atoms, edges, exclude
        self.live: dict[int, tuple[int, int, weakref.ref]] = {}  # storage -> (bytes, slot, ref)
        self.now = [0, 0, 0]  # bytes alive now: per edge, per atom, fixed
        self.peak = [0, 0, 0]  # the same at the highest total

    def _freed(self, ptr: int) -> None:
        size, slot, _ = self.live.pop(ptr)
        self.now[slot] -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if not isinstance(tensor, torch.Tensor) or tensor.layout != torch.strided:
                continue
            storage = tensor.untyped_storage()
            ptr = storage.data_ptr()
            if ptr in self.live or ptr in self.exclude or storage.nbytes() == 0:
                continue  # a view, an in-place result, or a weight
            rows = tensor.shape[0] if tensor.dim() else 0
            slot = 1 if rows == self.atoms else 0 if rows >= self.edges else 2
            # The storage's Python object lives as long as the storage, so its weak
            # reference's callback is the free.
            ref = weakref.ref(storage, lambda _, ptr=ptr: self._freed(ptr))
            self.live[ptr] = (storage.nbytes(), slot, ref)
            self.now[slot] += storage.nbytes()
        if sum(self.now) > sum(self.peak):
            self.peak = list(self.now)
        return out


def checkpointed_profile(model: torch.nn.Module, probe: Batch) -> MemoryProfile:
    """Bytes per edge, per atom and fixed of the tensors alive at the highest point of
    one call of ``model`` on ``probe`` with its interaction blocks checkpointed, forward
    and backward (:class:`LivePeak`), and :data:`CHECKPOINTED_PEAK_OVER_LIVE`."""
    edges = int(model.graph.topology(probe)[F.EDGE_INDEX].shape[1])
    weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    tracker = LivePeak(probe.num_atoms, edges, weights)
    with _probe_call(model, "always"), tracker:
        model(probe)
    per_edge, per_atom, fixed = tracker.peak
    return MemoryProfile(
        per_edge=per_edge / max(edges, 1),
        per_atom=per_atom / max(probe.num_atoms, 1),
        fixed=float(fixed),
        factor=CHECKPOINTED_PEAK_OVER_LIVE,
    )


KEEP_FREED_ABOVE_EDGES = 50_000
"""From this many edges a call's (E, width) tensors exceed glibc's largest mmap
threshold (32 MiB at 128 float32 channels), so each is a fresh mapping that the
kernel zeroes page by page; :func:`keep_freed_memory` is then considered."""

KEPT_PEAK_GROWTH = 1.5
"""Peak with freed memory kept over the peak without, for a plain call: the heap
fragments (a freed aligned block is a little short for the next aligned request of its
size). Measured with ``benchmarks/scaling.py`` (SchNet, 2,048 and 8,788 atoms, loaded
machine): 1.3x. Checkpointed calls fragment far more (1.9x and 2.3x; a 32,000-atom
SchNet call estimated at 5.9 GiB reached 15 GiB), and are the ones short of memory:
they return freed memory. A plain call keeps it only if its estimate times this fits."""


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
    )]  # fmt: skip


def _glibc():
    """The C library if it is glibc with ``mallopt`` and ``mallinfo2`` (2.33+), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        return libc
    except (OSError, AttributeError):
        return None


# glibc's malloc.h options, and their defaults (a trim threshold of -1 is SIZE_MAX).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_KEEP = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: -1}
_RETURN = {_M_MMAP_MAX: 65_536, _M_TRIM_THRESHOLD: 128 * 1024}


def keep_freed_memory(keep: bool = True) -> bool:
    """Make glibc's malloc keep freed memory for reuse (no mmap for large blocks, no
    trimming of the heap), or return it to the kernel again (glibc's defaults); True
    while it is kept.

    Why: a forward+forces call on a large batch allocates and frees its (E, width)
    tensors by the gigabyte. Above 32 MiB each is its own mmap, unmapped at free, and
    the kernel zeroes every page of the next one: at 2,048 Cu atoms SchNet touched
    4 GiB of fresh pages per call and spent half its CPU time there
    (docs/benchmarks.md). Kept, the memory is reused without faults; the cost is a
    fragmented heap (:data:`KEPT_PEAK_GROWTH`) and a process that keeps its peak
    resident memory after the call. :func:`check_memory` keeps it only for plain
    calls where that fits. Process-wide; ``GEOCOMPOSE_KEEP_FREED_MEMORY=0`` turns it off; a no-op
    where the C library is not glibc.
    """
    global _kept
    keep = keep and os.environ.get("GEOCOMPOSE_KEEP_FREED_MEMORY", "1") != "0"
    libc = _glibc()
    if keep == _kept or libc is None:
        return _kept
    if all(libc.mallopt(option, value) for option, value in (_KEEP if keep else _RETURN).items()):
        _kept = keep
    return _kept


_kept = False


def available_bytes() -> int | None:
    """Memory the machine can still give (``MemAvailable``) plus what this process's
    malloc holds free for reuse, or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    kernel = int(line.split()[1]) * 1024
                    break
            else:
                return None
    except (OSError, ValueError, IndexError):
        return None
    libc = _glibc()
    return kernel + (libc.mallinfo2().fordblks if libc is not None else 0)


def estimate_peak(
    model: torch.nn.Module, batch: Batch, checkpointed: bool = False
) -> tuple[float, int]:
    """``(peak bytes, edges)`` of ``model(batch)``, estimated before it runs (with the
    interaction blocks checkpointed if ``checkpointed``: an eval-mode eager model's);
    the model's profile is measured on a probe from ``batch`` at the first call and
    kept."""
    edges = int(model.graph.topology(batch)[F.EDGE_INDEX].shape[1])
    key = (model.dtype, model.training, checkpointed)
    profiles = model.__dict__.setdefault("_memory_profiles", {})
    if key not in profiles:
        if checkpointed:
            probe = probe_batch(batch, CHECKPOINTED_PROBE_ATOMS)
            profiles[key] = checkpointed_profile(model, probe)
        else:
            profiles[key] = profile(model, probe_batch(batch))
    return profiles[key].peak(batch.num_atoms, edges), edges


def check_memory(model: torch.nn.Module, batch: Batch, name: str = "the model") -> bool:
    """Whether to checkpoint the interaction blocks of this call, given the model's
    ``checkpointing`` mode; a call whose estimated peak exceeds the available memory
    either way is refused, in one line. A large call that leaves room keeps freed
    memory for reuse (:func:`keep_freed_memory`).

    ``"auto"`` checkpoints only a batch that would not fit plainly but fits
    checkpointed: the outputs are the same numbers, at the cost of running each
    interaction block's forward twice, which is better than a refusal. ``"never"``
    refuses that batch, naming the option.
    """
    can_checkpoint = not model.training and "_compiled_inner" not in model.__dict__
    checkpointed = model.checkpointing == "always" and can_checkpoint
    if batch.num_atoms == 0 or batch.positions.device.type != "cpu" or id(model) in _probing:
        return checkpointed
    edges = int(model.graph.topology(batch)[F.EDGE_INDEX].shape[1])
    if edges < KEEP_FREED_ABOVE_EDGES:
        return checkpointed
    available = available_bytes()
    if available is None:  # an unknown machine: nothing checked, nothing kept
        return checkpointed
    if edges < CHECK_ABOVE_EDGES:  # fits any machine this runs on, kept memory too
        keep_freed_memory(not checkpointed)
        return checkpointed
    plain, edges = estimate_peak(model, batch)
    checkpointed = _choose(model, batch, name, plain, can_checkpoint, available, edges)
    keep_freed_memory(not checkpointed and KEPT_PEAK_GROWTH * plain <= available)
    return checkpointed


def _choose(model, batch, name, plain, can_checkpoint, available, edges) -> bool:
    """Checkpoint or not, per the model's mode and the two estimates; or refuse."""
    mode = model.checkpointing
    # A model that cannot checkpoint (training, compiled) is not probed checkpointed.
    checkpointed = estimate_peak(model, batch, True)[0] if can_checkpoint else float("inf")
    gib = 2**30
    if mode == "always" and can_checkpoint:
        if checkpointed <= available:
            return True
        needs = f"{checkpointed / gib:.1f} GiB with its interactions checkpointed"
    elif plain <= available:
        return False
    elif mode == "auto" and can_checkpoint and checkpointed <= available:
        return True
    elif checkpointed <= available:  # mode "never"
        raise MemoryRefusal(
            f"{name} on {batch.num_atoms:,} atoms ({edges:,} edges) needs about "
            f"{plain / gib:.1f} GiB, more than the {available / gib:.1f} GiB available; "
            f"checkpointed it would need about {checkpointed / gib:.1f} GiB: set "
            "model.checkpointing = 'auto' (or 'always'), or use fewer atoms per batch"
        )
    elif not can_checkpoint:
        needs = f"{plain / gib:.1f} GiB (a training or torch-compiled model is not checkpointed)"
    else:
        needs = f"{min(plain, checkpointed) / gib:.1f} GiB"
    raise MemoryRefusal(
        f"{name} on {batch.num_atoms:,} atoms ({edges:,} edges) needs about {needs}, "
        f"more than the {available / gib:.1f} GiB available: use fewer atoms per batch "
        "(or structures per call), or a machine with more memory"
    )
