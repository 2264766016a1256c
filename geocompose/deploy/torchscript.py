"""The TorchScript inference twin of a potential, made from its ``torch.export`` program.

metatomic (and through it LAMMPS, i-PI, TorchSim, ...) runs TorchScript. Our blocks do
not script (pydantic params, ``State`` mappings, Python path plans), and a scriptable
copy of every block would be a second implementation of each. The twin is instead
derived, by one mechanical rewrite, from the same trace ``--format pt2`` writes
(:func:`~geocompose.train.export.trace_after_neighbours`): everything after the
neighbour list as plain ATen ops with dynamic numbers of atoms, edges and structures.
The rewrite, each step because TorchScript needs it:

* the program's pytree in/out code becomes plain FX code (flat tensors in, a tuple out);
* its ``_guards_fn`` call (shape guards, Python) is dropped, as are assertions on
  symbolic sizes that nothing reads (they only restate the dynamic-shape constraints);
* ``sym_size``/``sym_numel`` become ``size``/``numel``; every ATen overload becomes its
  overload packet, so TorchScript picks the overload from the argument types;
* constants and weights move onto one flat module, named by their dotted path.

The result is ``torch.jit.script``-ed and checked against the eager potential by the
caller (``geocompose export`` prints the deviation). A model whose trace fails, or
whose graph uses an op TorchScript cannot compile, is refused with an
:class:`~geocompose.train.export.ExportError` naming the model and the node.
"""

from __future__ import annotations

import re
import warnings

import torch
from torch import fx, nn

from geocompose.data.batch import Batch
from geocompose.train.export import AfterNeighbours, ExportError, trace_after_neighbours
from geocompose.train.potential import Potential
from geocompose.types import fields as F

__all__ = ["TwinOutputs", "inference_twin", "script_program"]

_ATEN = torch.ops.aten
_SYMBOLIC_SIZES = {_ATEN.sym_size.int: _ATEN.size.int, _ATEN.sym_numel.default: _ATEN.numel.default}
_ASSERTIONS = {
    _ATEN._assert_scalar.default,
    _ATEN.sym_constrain_range_for_size.default,
    _ATEN.sym_constrain_range.default,
    _ATEN._assert_tensor_metadata.default,
}
_NODE_IN_ERROR = re.compile(r"(\w+) = torch\.ops\.([\w.]+)\(")


class TwinOutputs(AfterNeighbours):
    """The exported potential with a fixed output layout, so the scripted twin always
    returns ``(energy (B,), atomic_energy (N,) or (0,), forces (N, 3) or (0, 3))``:
    an empty tensor stands for an output the model does not have."""

    def forward(self, positions, atomic_numbers, batch, cell, pbc, edge_index, edge_shifts):
        out = self.evaluate(positions, atomic_numbers, batch, cell, pbc, edge_index, edge_shifts)
        energy = out[F.ENERGY]
        return (
            energy,
            out.get(F.ATOMIC_ENERGY, energy.new_zeros(0)),
            out.get(F.FORCES, energy.new_zeros((0, 3))),
        )


def _resolve(module: nn.Module, dotted: str):
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def _flat_graph_module(module: fx.GraphModule, name: str) -> fx.GraphModule:
    """``program.module()`` rewritten into an FX module TorchScript compiles (rules in
    the module docstring)."""
    graph = module.graph
    graph._codegen = fx.graph.CodeGen()  # plain code: no pytree flattening
    root = nn.Module()
    for node in list(graph.nodes):
        if node.op == "call_module":  # the shape guards: Python only, never read
            if node.users:
                raise ExportError(
                    f"TorchScript cannot compile '{name}': node {node.name} calls module "
                    f"{node.target!r} for a value"
                )
            graph.erase_node(node)
        elif node.op == "call_function":
            if node.target in _ASSERTIONS and not node.users:
                graph.erase_node(node)
                continue
            node.target = _SYMBOLIC_SIZES.get(node.target, node.target)
            if isinstance(node.target, torch._ops.OpOverload):
                node.target = node.target.overloadpacket
        elif node.op == "get_attr":
            value = _resolve(module, node.target)
            flat = node.target.replace(".", "_")
            if not isinstance(value, torch.Tensor):
                raise ExportError(
                    f"TorchScript cannot compile '{name}': node {node.name} reads "
                    f"{node.target!r}, a {type(value).__name__} (e.g. a torch.cond branch), "
                    "not a tensor"
                )
            # Weights are frozen in the twin: inference only, gradients are w.r.t. inputs.
            root.register_buffer(flat, value.detach().clone())
            node.target = flat
    return fx.GraphModule(root, graph)


def script_program(program: torch.export.ExportedProgram, name: str) -> torch.jit.ScriptModule:
    """The exported ``program`` as a TorchScript module with the same flat inputs and
    outputs.

    Args:
        program: a ``torch.export`` program of plain tensor inputs and outputs.
        name: the model's name, for error messages.

    Raises:
        ExportError: TorchScript cannot compile a node of the program (named, with
            TorchScript's reason).
    """
    flat = _flat_graph_module(program.module(), name)
    try:
        with warnings.catch_warnings():
            # torch's own GraphModule.__init__ trips this TorchScript lint; nothing of ours.
            warnings.filterwarnings("ignore", message=".*instance-level annotations on empty")
            return torch.jit.script(flat)
    except Exception as err:  # TorchScript raises RuntimeError and frontend errors
        text = str(err)
        reason = text.strip().splitlines()[0] if text.strip() else type(err).__name__
        where = _NODE_IN_ERROR.search(text)
        node = f" at node {where.group(1)} (aten.{where.group(2)})" if where else ""
        raise ExportError(f"TorchScript cannot compile '{name}'{node}: {reason}") from err


def inference_twin(potential: Potential, example: Batch) -> torch.jit.ScriptModule:
    """The TorchScript twin of ``potential`` after the neighbour list.

    Its inputs are those of the ``.pt2`` export (positions (N, 3), atomic_numbers (N,),
    batch (N,), cell (B, 3, 3), pbc (B, 3), edge_index (2, E) [sender j, receiver i],
    edge_shifts (E, 3)); it returns ``(energy, atomic_energy, forces)`` as
    :class:`TwinOutputs` lays out. It is differentiable w.r.t. positions and cell.

    Args:
        potential: the potential, in the dtype the twin should run in.
        example: a batch of at least 2 structures to trace with (any sizes work after).

    Raises:
        ExportError: the model cannot be traced or scripted.
    """
    potential = potential.eval()
    core = TwinOutputs(potential).eval()
    program = trace_after_neighbours(core, potential, example)
    return script_program(program, potential.model.name)
