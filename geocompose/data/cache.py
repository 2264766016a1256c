"""The one memoisation mechanism: a :class:`Cache`, held for one of two lifetimes.

Derived data is computed once and shared, but for how long depends on what it is
derived from, so a model call sees two caches of the same class (:class:`RunCaches`):

* **per batch** — the :class:`~geocompose.data.batch.Batch`'s own cache. Integer
  topology: the neighbour list, then what is built from the edge set alone (reverse
  edges, triplet and quadruplet index, padded layouts). Reused by every layer, every
  epoch and every check of the verifier on that batch; positions are immutable on a
  batch, so it never goes stale, and a changed batch (``Batch.replace``) starts empty.
* **per run** — a fresh cache for each run of the inner pipeline (each frame of a
  frame-averaging strategy). Values computed from the geometry (triplet harmonics,
  radial bases, quadruplet bases) keep their autograd graph, so they may be shared by
  the layers of one run only: kept on the batch they would tie the next call to this
  call's graph and give it wrong forces, and they differ from frame to frame.

Memos are never attached to tensors: every value has one of these two homes.

Under activation checkpointing (``GeometricModel.checkpointing``) an interaction block
runs twice, once forward and once to rebuild what its backward needs. A per-run memo
first computed inside such a block is kept, not discarded with the block's activations,
so the second run finds it in the cache instead of computing it again (see
:meth:`RunCaches.per_run`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Cache", "RunCaches"]


class Cache:
    """A memo table: each key's value is computed once, on first use.

    A value must be a pure function of its key and of whatever owns the cache (the
    batch, or the run), so keys name everything else the value depends on.
    """

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``'s value for ``key``, computed only if the key is new."""
        if key not in self._values:
            self._values[key] = compute()
        return self._values[key]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class RunCaches:
    """The caches one run of a model's blocks reads (the state's ``F.CACHES`` entry).

    Args:
        batch: the batch's cache (per-batch lifetime), shared with ``Batch.cached``.
        scope: names the edge set, e.g. the graph builder's cache key: memos of two
            graphs over one batch never meet.
        run: this run's cache; :meth:`for_run` gives the next run a fresh one.
        checkpointed: whether the model checkpoints its interaction blocks in this call
            (the per-run memos then keep what their own backward needs).
    """

    batch: Cache
    scope: Hashable
    run: Cache = field(default_factory=Cache)
    checkpointed: bool = False

    @classmethod
    def for_call(cls) -> RunCaches:
        """Caches for a call with no batch behind it (an exported program's inputs):
        topology is memoised for this call only."""
        return cls(Cache(), ())

    def for_run(self) -> RunCaches:
        """The same batch cache, a fresh run cache (one per run, per frame)."""
        return RunCaches(self.batch, self.scope, checkpointed=self.checkpointed)

    def topology(
        self, edge_index: torch.Tensor, key: tuple, compute: Callable[[], Any]
    ) -> Any:
        """Memoise integer data derived from the edge set ``edge_index`` for the batch.

        A scope holds one edge set: the first ``edge_index`` memoised under it.

        Raises:
            RuntimeError: when ``edge_index`` is not that edge set (a state paired with
                another batch's caches): a memo is never served for other edges.
        """
        # The first edge set memoised under a scope owns it: the graph's topology is
        # itself cached on the batch, so a state from this batch brings that tensor.
        owner = self.batch.cached(("edge set", self.scope), lambda: edge_index)
        if owner is not edge_index:
            raise RuntimeError(
                f"topology memo {key} asked for another edge set than the one these "
                "caches hold; a state must carry the caches of the batch its edges come from"
            )
        return self.batch.cached(("topology", self.scope, *key), compute)

    def per_run(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """Memoise a value computed from this run's geometry (autograd graph kept).

        In a checkpointed call the value is computed outside the checkpoint's saved-tensor
        hooks: a checkpoint discards what its block saved and rebuilds it by running the
        block again, but that second run reads the memo from the cache, so what the memo's
        own computation saved would never be rebuilt (torch raises a CheckpointError).
        """
        if not self.checkpointed or key in self.run:
            return self.run.cached(key, compute)
        # Innermost saved-tensor hooks win: these keep the tensors, as outside any checkpoint.
        with torch.autograd.graph.saved_tensors_hooks(_keep, _keep):
            return self.run.cached(key, compute)


def _keep(tensor: torch.Tensor) -> torch.Tensor:
    """Saved-tensor hook that stores the tensor itself (what autograd does by default)."""
    return tensor
