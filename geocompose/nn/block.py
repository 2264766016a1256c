"""The protocol every registered knob follows, whatever its kind.

A knob is an ``nn.Module`` with a params model, a pure typing rule::

    signature(params, upstream, ctx) -> Signature | TypeRefusal

that runs before any weights exist (so the compiler and the search type-check without
building modules), and one constructor ``Builder(params, upstream, ctx)``. Graph
builders, node embeddings, radial bases, envelopes, angular bases, the edge embedding,
interactions and readouts are blocks: ``forward`` takes the model state (field name →
tensor) and returns only the fields it writes. Blocks that share derived data (triplet
layouts, their angular bases) memoise it in the state's caches (:func:`run_caches`),
never on a tensor. Symmetry strategies follow the same protocol but wrap the pipeline
instead (``geocompose.nn.symmetry.base``). A built block stores
``irreps_in``/``irreps_out`` keyed by field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from geocompose.data.cache import RunCaches
from geocompose.registry.core import Entry, KnobModel
from geocompose.types import fields as F
from geocompose.types.signature import FieldTypes, Signature, TypeRefusal

State = Mapping[str, torch.Tensor]
"""The model state between blocks: declared field name → tensor; its one other entry,
``F.CACHES``, holds the run's :class:`~geocompose.data.cache.RunCaches`."""


def run_caches(state: State) -> RunCaches:
    """The memo tables of the run ``state`` belongs to: per batch (topology) and per
    run (geometry, with its autograd graph); ``GeometricModel`` puts them there."""
    caches = state.get(F.CACHES)
    if caches is None:
        raise KeyError(
            f"the state has no '{F.CACHES}': blocks sharing memos run inside a "
            "GeometricModel, or get RunCaches from batch.run_caches(graph.cache_key)"
        )
    return caches  # type: ignore[return-value]


@dataclass(frozen=True)
class BuildContext:
    """Facts from elsewhere in the blueprint that a block may need.

    Args:
        species: chemical symbols, in the blueprint's order (index = species id).
        cutoff: the graph's cutoff radius in Å (every graph builder has one; bases and
            envelopes are scaled to it).
        knob: the blueprint path of the block being built, for messages.
        output: for readouts, the output name (the key under ``readout:``).
        long_range_cutoff: radius of the graph's long-range edge set, if it has one.
    """

    species: tuple[str, ...]
    cutoff: float
    knob: str = ""
    output: str = ""
    long_range_cutoff: float | None = None


class Block(nn.Module):
    """Base of every registered knob: typed reads and writes, one ``forward(state) ->
    writes`` (a strategy's ``forward`` wraps the pipeline instead)."""

    Params: ClassVar[type[KnobModel]]
    entry: ClassVar[Entry]

    @classmethod
    def signature(
        cls, params: KnobModel, upstream: FieldTypes, ctx: BuildContext
    ) -> Signature | TypeRefusal:
        """The typing rule: what the knob reads and writes given ``upstream``, or why not."""
        raise NotImplementedError

    @classmethod
    def label(cls, params: KnobModel) -> str:
        """How the knob is named in type traces: its ``type`` unless it says more."""
        return params.type  # type: ignore[attr-defined]

    def __init__(self, params: KnobModel, upstream: FieldTypes, ctx: BuildContext):
        super().__init__()
        sig = self.signature(params, upstream, ctx)
        if isinstance(sig, TypeRefusal):
            # The compiler checks signatures first; reaching here is a programming error.
            raise TypeError(f"{type(self).__name__} built against refused types: {sig.render()}")
        self.params = params
        self.sig = sig
        self.irreps_in = {name: t.irreps for name, t in sig.reads.items()}
        self.irreps_out = {name: t.irreps for name, t in sig.writes.items()}

    def forward(self, state: State) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        def fmt(types: Mapping) -> str:
            return ", ".join(f"{k}: {v}" for k, v in types.items())

        weights = sum(p.numel() for p in self.parameters())
        return (
            f"reads {{{fmt(self.sig.reads)}}} -> writes {{{fmt(self.sig.writes)}}}, "
            f"guarantee={self.sig.guarantee.value}, weights={weights}"
        )
