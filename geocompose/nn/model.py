"""The compiled model: blocks in pipeline order over one shared, typed state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace

import ase.data
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from geocompose.data.batch import Batch
from geocompose.data.cache import RunCaches
from geocompose.errors import GeocomposeError, StructureError
from geocompose.nn.block import Block
from geocompose.nn.graph.base import GraphBuilder
from geocompose.nn.memory import check_memory
from geocompose.registry import Kind
from geocompose.types import FieldType
from geocompose.types import fields as F
from geocompose.types.group import Group


class GeometricModel(nn.Module):
    """A geometric GNN compiled from a blueprint.

    Calling it on a :class:`~geocompose.Batch` returns a mapping from output name to
    tensor, each of shape ``(rows, irreps.dim)`` with rows per atom or per structure as
    ``outputs[name]`` declares (energy is ``(B, 1)``, forces ``(N, 3)``).

    Attributes:
        name: the blueprint's name.
        species: chemical symbols the model accepts.
        symmetry: the group the blueprint *claims* (what the verifier holds it to).
        symmetry_exact: whether that claim is exact, or approximate (stochastic frames,
            augmentation), in which case ``symmetry_tolerance`` is the bound stated.
        strategy: the symmetry strategy wrapping the inner pipeline.
        derived_symmetry: the group the compiler derived from the blocks.
        smooth: whether the energy is claimed continuous across the cutoff.
        outputs: output name → declared FieldType (irreps and level).
        trace: the type trace (``geocompose info`` prints it).
        checkpointing: ``"auto"`` (default), ``"always"`` or ``"never"``: whether an
            inference call checkpoints each interaction block (see below).

    **Checkpointing** (inference, eval mode): each interaction block runs under
    ``torch.utils.checkpoint``, so its activations are not kept for the forces'
    backward pass but rebuilt, one block at a time, by running the block again: the
    peak memory of forward+forces drops to the edge bases plus about one block's
    activations, for one more forward pass of the interactions. The numbers are the
    same (the block runs on the same inputs). ``"auto"`` checkpoints only a batch
    whose plain estimate exceeds the available memory and whose checkpointed one fits
    (:func:`~geocompose.nn.memory.check_memory`); ``"never"`` refuses it, naming this
    switch. Training and torch-compiled models never checkpoint.
    """

    CHECKPOINTING_MODES = ("auto", "always", "never")

    def __init__(
        self,
        name: str,
        species: Sequence[str],
        blocks: Sequence[Block],
        outputs: Mapping[str, FieldType],
        symmetry: Group,
        derived_symmetry: Group,
        smooth: bool,
        strategy: nn.Module,
        symmetry_exact: bool = True,
        symmetry_tolerance: float | None = None,
        trace=None,
    ):
        super().__init__()
        self.name = name
        self.species = tuple(species)
        if not blocks or not isinstance(blocks[0], GraphBuilder):
            raise TypeError("the first block of a model must be its graph builder")
        self.blocks = nn.ModuleList(blocks)
        self.outputs = dict(outputs)
        self.symmetry = symmetry
        self.derived_symmetry = derived_symmetry
        self.smooth = smooth
        self.strategy = strategy
        self.symmetry_exact = symmetry_exact
        self.symmetry_tolerance = symmetry_tolerance
        self.trace = trace
        self.checkpointing = "auto"
        derivatives = [b for b in blocks if b.entry.derivative]
        derived_outputs = {name for b in derivatives for name in b.irreps_out}
        self.inner_outputs = [name for name in outputs if name not in derived_outputs]
        self.needs_position_grad = bool(derivatives)
        # With several derivative readouts each later one differentiates the same graph.
        self.derivatives_share_graph = len(derivatives) > 1
        table = torch.full((len(ase.data.chemical_symbols),), -1, dtype=torch.long)
        for index, symbol in enumerate(self.species):
            table[ase.data.atomic_numbers[symbol]] = index
        self.register_buffer("species_of_z", table, persistent=False)

    @property
    def checkpointing(self) -> str:
        # Models pickled before the switch existed behave as the default.
        return self.__dict__.get("_checkpointing", "auto")

    @checkpointing.setter
    def checkpointing(self, mode: str) -> None:
        if mode not in self.CHECKPOINTING_MODES:
            raise GeocomposeError(
                f"checkpointing must be one of {', '.join(self.CHECKPOINTING_MODES)}, not {mode!r}"
            )
        self.__dict__["_checkpointing"] = mode

    @property
    def graph(self) -> GraphBuilder:
        return self.blocks[0]

    @property
    def irreps_out(self) -> dict[str, object]:
        return {name: t.irreps for name, t in self.outputs.items()}

    @property
    def dtype(self) -> torch.dtype:
        for p in self.parameters():
            return p.dtype
        return torch.get_default_dtype()

    def species_index(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """(N,) atomic numbers → (N,) index into ``species``; unknown species refused."""
        if atomic_numbers.numel() and (
            atomic_numbers.min() < 0 or atomic_numbers.max() >= len(self.species_of_z)
        ):
            raise StructureError(f"atomic numbers out of range: {atomic_numbers.unique().tolist()}")
        index = self.species_of_z[atomic_numbers]
        unknown = (index < 0).nonzero().flatten()
        if unknown.numel():
            atom = int(unknown[0])
            symbol = ase.data.chemical_symbols[int(atomic_numbers[atom])]
            raise StructureError(
                f"atom {atom} is {symbol}, which model '{self.name}' does not know "
                f"(its species: {', '.join(self.species)})"
            )
        return index

    def input_state(
        self, batch: Batch, positions: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The state the blocks start from: the batch's inputs (``positions`` in place
        of its own if given), its cached topology, and the caches of its memos."""
        state: dict[str, torch.Tensor] = {
            F.POSITIONS: batch.positions if positions is None else positions,
            F.ATOMIC_NUMBERS: batch.atomic_numbers,
            F.SPECIES: self.species_index(batch.atomic_numbers),
            F.BATCH: batch.batch,
            F.CELL: batch.cell,
            F.PBC: batch.pbc,
            # Memos of this batch's edge set and of each run (geocompose.data.cache).
            F.CACHES: batch.run_caches(self.graph.cache_key),
        }
        state.update(self.graph.topology(batch))
        return state

    def _run_inner(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Graph geometry → embeddings → interactions → non-derivative readouts.

        Every run (every frame a strategy averages over) gets a fresh per-run cache:
        geometry memos carry this run's autograd graph. A state from outside
        :meth:`forward` (an exported program's inputs) has no batch to memoise on.
        """
        state = dict(state)
        caches = state.get(F.CACHES)
        caches = caches.for_run() if caches is not None else RunCaches.for_call()
        state[F.CACHES] = caches
        for block in self.blocks:
            if block.entry.derivative:
                continue
            if caches.checkpointed and block.entry.kind is Kind.INTERACTION:
                # A copy of the state: the backward pass runs the block again on its
                # inputs as they are now, not as the later blocks leave the dict.
                state.update(checkpoint(block, dict(state), use_reentrant=False))
            else:
                state.update(block(state))
        return {name: state[name] for name in self.inner_outputs}

    def forward(self, batch: Batch, strain: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Outputs of one batch.

        ``strain``: the (B, 3, 3) zero tensor requiring grad that ``batch`` was deformed
        by (positions and cell times ``I + sym(strain)``, as ``Potential`` does for
        stress). The energy's gradient readout then also writes ``strain_derivative``
        (dE/d(strain)), from the same backward pass as the forces.

        With derivative readouts (forces) the outputs stay differentiable when training,
        or when the caller's positions or cell require grad; otherwise the autograd
        graph is freed during the forces' backward pass and the outputs are detached.

        A batch in another float dtype than the model's weights (``Batch.from_ase``
        gives float64, ``compile`` float32 by default) is cast to the model's dtype, so
        ``model(Batch.from_ase(atoms))`` works whatever ``dtype`` was compiled; the
        cast is differentiable, so forces and gradients reach the caller's tensors.
        """
        if batch.positions.dtype != self.dtype:
            batch = batch.to(self.dtype)
        if self.checkpointing == "always" and (self.training or "_compiled_inner" in self.__dict__):
            raise GeocomposeError(
                f"model '{self.name}': checkpointing is an inference mode of the eager model; "
                "call .eval() first (and do not torch_compile it), or set checkpointing = 'auto'"
            )
        # A batch too large for this machine is refused now, not by the allocator later;
        # one that fits only with its interactions checkpointed is checkpointed.
        checkpointed = check_memory(self, batch, f"model '{self.name}'")
        # The caller will differentiate the outputs: derivative readouts keep the graph.
        keep = (
            self.training
            or self.derivatives_share_graph
            or batch.positions.requires_grad
            or batch.cell.requires_grad
        )
        with torch.enable_grad() if self.needs_position_grad else nullcontext():
            positions = batch.positions
            if self.needs_position_grad and not positions.requires_grad:
                # A leaf copy, so forces are d/d(this call's positions) and the caller's
                # tensor is untouched.
                positions = positions.detach().requires_grad_(True)
            state = self.input_state(batch, positions)
            if checkpointed:
                state[F.CACHES] = replace(state[F.CACHES], checkpointed=True)
            # The strategy wraps everything but derivative readouts, so forces are the
            # gradient of the symmetrised energy.
            inner = self.__dict__.get("_compiled_inner", self._run_inner)
            state.update(self.strategy(inner, state, self.outputs, self.graph))
            if strain is not None:
                state[F.STRAIN] = strain
            for block in self.blocks:
                if block.entry.derivative:
                    state.update(block(state, keep_graph=keep))
        names = [*self.outputs, *([F.STRAIN_DERIVATIVE] if F.STRAIN_DERIVATIVE in state else [])]
        if self.needs_position_grad and not keep:
            # The graph behind them is gone: plain tensors, not a backward() that fails.
            return {name: state[name].detach() for name in names}
        return {name: state[name] for name in names}

    def torch_compile(self, backend: str = "inductor", **options) -> GeometricModel:
        """Run the blocks through ``torch.compile`` from the next call on; returns self.

        What is compiled is the pipeline from edge geometry to the non-derivative
        readouts (``_run_inner``), with dynamic shapes, so a new atom or edge count
        does not recompile; the neighbour list (numpy, vesin) and the forces' backward
        call stay eager around it (autograd differentiates the compiled graph). The
        first call compiles (minutes on a small CPU with inductor, which needs a C++
        compiler); outputs equal eager ones to float round-off. ``backend`` and
        ``options`` go to ``torch.compile`` (e.g. ``backend="aot_eager"`` to trace
        without generating code). With torch 2.13 on CPU, inductor needs
        ``torch.set_num_threads(1)``: with more threads its C++ codegen fails (an
        AssertionError generating the atomic-add scatter of the aggregation), so more
        threads are refused here with a one-line error.

        Measured (benchmarks/schnet.py --compile): see docs/benchmarks.md.
        """
        if backend == "inductor" and torch.get_num_threads() > 1:
            raise GeocomposeError(
                f"torch_compile with inductor needs torch.set_num_threads(1) first (now "
                f"{torch.get_num_threads()}): with more threads torch 2.13's C++ code "
                "generation fails on the aggregation's scatter"
            )
        options.setdefault("dynamic", True)
        self._compiled_inner = torch.compile(self._run_inner, backend=backend, **options)
        return self

    def extra_repr(self) -> str:
        weights = sum(p.numel() for p in self.parameters())
        outs = ", ".join(f"{k}: {v}" for k, v in self.outputs.items())
        return (
            f"name={self.name}, species={list(self.species)}, claim={self.symmetry.value}, "
            f"derived={self.derived_symmetry.value}, strategy={self.strategy.entry.name}, outputs={{{outs}}}, weights={weights}"
        )
