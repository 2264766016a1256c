"""Data-parallel training across processes with ``torch.distributed`` and DDP.

A run launched by ``torchrun`` (which sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``)
joins one process group: gloo on CPU, NCCL on CUDA with process ``LOCAL_RANK`` on
``cuda:LOCAL_RANK``. Each process takes its own share of every epoch's batches, and
:class:`~torch.nn.parallel.DistributedDataParallel` averages the gradients across
processes during ``backward``, so the step every process takes is the step on the union
of their batches:

    g = (1 / W) sum_r grad L_r,     W = world size, L_r = mean loss of rank r's batch

Nothing here distributes by hand: DDP does the gradients, ``torch.distributed`` the
process group and the metric sums. Without ``torchrun`` (or with one process) every
function is a no-op and training runs exactly as before.

Example::

    torchrun --standalone --nproc_per_node 2 -m geocompose train schnet.yaml cu.extxyz
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from geocompose.errors import GeocomposeError, StructureError

__all__ = [
    "DeviceUnavailable",
    "device",
    "is_main",
    "launched",
    "rank",
    "setup",
    "shard",
    "sum_across",
    "sum_metrics",
    "teardown",
    "world_size",
    "wrap",
]


def launched() -> bool:
    """Whether this process was started by ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """Whether a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes checkpoints, logs and output."""
    return rank() == 0


class DeviceUnavailable(GeocomposeError):
    """A ``--device`` that is not a torch device, or one this torch cannot use."""


def device(requested: str) -> str:
    """The device of this process: ``cuda:LOCAL_RANK`` when CUDA is asked for under a
    multi-process launch (one GPU per process), else ``requested`` unchanged.

    Raises:
        DeviceUnavailable: not a device name, or one this torch build or machine lacks
            (``cuda`` on a CPU-only torch, ``cuda:3`` on a one-GPU machine).
    """
    if launched() and requested.startswith("cuda"):
        requested = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return available(requested)


def available(requested: str) -> str:
    """``requested`` when this torch can allocate on it (see :func:`device`)."""
    try:
        where = torch.device(requested)
    except (RuntimeError, TypeError) as err:
        raise DeviceUnavailable(
            f"--device {requested!r} is not a torch device ({_first_line(err)})"
        ) from None
    if where.type == "cpu":
        return requested
    try:  # the one probe that covers every backend: allocate nothing on it
        torch.empty(0, device=where)
    except (RuntimeError, AssertionError) as err:  # a CPU-only torch asserts on CUDA
        raise DeviceUnavailable(
            f"--device {requested}: this torch cannot use it ({_first_line(err)}); "
            "use --device cpu"
        ) from None
    return requested


def _first_line(err: BaseException, width: int = 120) -> str:
    """torch's message cut to one short line (its backend lists run to pages)."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line if len(line) <= width else line[: width - 3].rstrip() + "..."


def setup(requested_device: str = "cpu") -> None:
    """Join the process group ``torchrun`` describes (idempotent; nothing without it).

    Raises:
        StructureError: launched for several processes but torch.distributed or the
            backend is missing.
    """
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return
    cuda = requested_device.startswith("cuda")
    if not dist.is_available() or not (
        dist.is_nccl_available() if cuda else dist.is_gloo_available()
    ):
        raise StructureError(
            f"launched for {os.environ['WORLD_SIZE']} processes but this torch has no "
            f"{'nccl' if cuda else 'gloo'} backend"
        )
    if cuda:
        torch.cuda.set_device(device(requested_device))
    # torchrun's environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE) is the rendezvous.
    dist.init_process_group(backend="nccl" if cuda else "gloo", init_method="env://")


def teardown() -> None:
    """Leave the process group (after the last collective)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(order: Sequence[int]) -> list[int]:
    """This rank's share of an epoch's batch order: every W-th batch from position
    ``rank``, the same number on every rank.

    The last ``len(order) % W`` batches of the order are dropped (not wrapped around):
    every rank must take the same number of steps, or the ones with an extra step wait
    forever for the others in DDP's gradient all-reduce. The order is reshuffled each
    epoch, so a different remainder is left out each time.

    Raises:
        StructureError: fewer batches than processes.
    """
    w, r = world_size(), rank()
    steps = len(order) // w
    if w > 1 and steps == 0:
        raise StructureError(
            f"{len(order)} training batches cannot be shared by {w} processes; "
            "lower --batch-atoms or use fewer processes"
        )
    return list(order[r : steps * w : w])


def sum_across(values: dict[str, float]) -> dict[str, float]:
    """Sum each key over all ranks (a rank may lack a key: it saw no batch of that kind).

    Summed in rank order on every rank, so each gets bit-identical totals and takes the
    same early-stopping and best-checkpoint decisions.
    """
    if not active():
        return dict(values)
    gathered: list[dict[str, float] | None] = [None] * world_size()
    dist.all_gather_object(gathered, values)
    total: dict[str, float] = {}
    for part in gathered:
        for key, value in (part or {}).items():
            total[key] = total.get(key, 0.0) + value
    return total


def sum_metrics(metrics, loss: float, count: int) -> float:
    """Add a :class:`~geocompose.train.metrics.Metrics` (in place) and a mean loss over
    ``count`` structures across the ranks; returns the mean loss over all of them."""
    if not active():
        return loss
    total = sum_across(
        {
            **metrics.sums,
            **{f"_n_{k}": v for k, v in metrics.counts.items()},
            "_loss": loss * count if count else 0.0,  # a rank with no batch has loss NaN
            "_count": count,
        }
    )
    value = total.pop("_loss") / total.pop("_count")
    metrics.counts = {k[3:]: int(total.pop(k)) for k in list(total) if k.startswith("_n_")}
    metrics.sums = total
    return value


def wrap(module: nn.Module, batch) -> nn.Module:
    """``module`` (a :class:`~geocompose.train.loss.Objective`, ``batch -> (loss, terms)``)
    in DistributedDataParallel; itself when running alone.

    DDP broadcasts rank 0's weights and buffers at construction, so every rank starts
    (or resumes) from the same state. ``find_unused_parameters`` stays off unless a
    weight gets no gradient from the loss (probed by one forward and backward of ``batch``
    through the unwrapped module; e.g. the energy head's last bias under a zero energy
    weight, or a direct-forces head under a zero force weight): it costs a graph traversal
    every step, and is needed only then, since otherwise DDP refuses the next step
    ("Expected to have finished reduction in the prior iteration"). Derivative readouts
    are fine without it: their ``autograd.grad(E, positions, create_graph=True)`` inside
    forward differentiates only with respect to positions, so it fires none of DDP's
    per-parameter hooks; the parameters' gradients, through the second-order graph, all
    arrive in the loss's ``backward``, where DDP averages them.
    """
    if not active():
        return module
    for p in module.parameters():
        p.grad = None
    module(batch)[0].backward()
    unused = any(p.grad is None for p in module.parameters() if p.requires_grad)
    for p in module.parameters():
        p.grad = None
    # The same choice on every rank, or DDP's reducers disagree.
    unused = bool(sum_across({"unused": float(unused)})["unused"])
    here = next(module.parameters()).device
    return DistributedDataParallel(
        module,
        device_ids=[here.index] if here.type == "cuda" else None,
        # The buffers (reference energies, scale) never change after construction.
        broadcast_buffers=False,
        find_unused_parameters=unused,
    )
