"""Shared helpers for the Cartesian-family tests: hand-made states and a direct,
float64 equivariance check of one block (independent of the compiler and verifier).

A state is built by hand for a small random structure: all pairs within the cutoff
as edges (receiver-sorted), an invariant radial basis and envelope of the lengths, and
random node features of the requested irreps. A group element acts on every field by
its declared type, with exact matrices for 0e and 1o (e3nn's D_from_matrix is only
accurate to ~1e-7), and the block's writes must transform the same way.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3

from geocompose.data.rotations import haar_rotations
from geocompose.nn.block import BuildContext
from geocompose.nn.graph.base import safe_norm
from geocompose.nn.ops.cartesian import CartesianLayout
from geocompose.types import FieldType, Level, discrete, scalars
from geocompose.types import fields as F

SPECIES = ("H", "C", "N", "O", "Cu")
CUTOFF = 5.0
NUM_RADIAL = 6
ATOL = 1e-12  # float64 equivariance, relative to the output scale


def rotation(seed: int, improper: bool = False) -> torch.Tensor:
    """A Haar-random float64 rotation, optionally times the inversion."""
    q = haar_rotations(1, torch.Generator().manual_seed(seed))[0]
    return -q if improper else q


def ctx(knob: str = "interactions[0]", output: str = "") -> BuildContext:
    return BuildContext(species=SPECIES, cutoff=CUTOFF, knob=knob, output=output)


def edge_types() -> dict[str, FieldType]:
    return {
        **F.INPUT_TYPES,
        F.EDGE_INDEX: discrete(Level.EDGE),
        F.EDGE_SHIFTS: discrete(Level.EDGE),
        F.EDGE_VECTORS: FieldType(o3.Irreps("1o"), Level.EDGE),
        F.EDGE_LENGTHS: scalars(1, Level.EDGE),
        F.EDGE_RADIAL: scalars(NUM_RADIAL, Level.EDGE),
        F.EDGE_ENVELOPE: scalars(1, Level.EDGE),
    }


def upstream(features: str, **extra: FieldType) -> dict[str, FieldType]:
    """Field types after the edge embedding, with ``node_features`` of ``features``."""
    return {**edge_types(), F.NODE_FEATURES: FieldType(o3.Irreps(features), Level.NODE), **extra}


def positions(
    seed: int, n: int = 6, *, coincident: bool = False, isolated: bool = False
) -> torch.Tensor:
    """(n, 3) random atoms in a 3 Å box; optionally a duplicate atom and a far one."""
    gen = torch.Generator().manual_seed(seed)
    x = 3.0 * torch.rand(n, 3, generator=gen, dtype=torch.float64)
    if coincident:
        x = torch.cat([x, x[:1]])  # atom n sits exactly on atom 0: a zero-length edge
    if isolated:
        x = torch.cat(
            [x, x.mean(0, keepdim=True) + torch.tensor([[40.0, 0.0, 0.0]], dtype=x.dtype)]
        )
    return x


def state_for(
    x: torch.Tensor, types: dict[str, FieldType], seed: int = 0
) -> dict[str, torch.Tensor]:
    """A model state for one molecule at positions ``x`` with random node features."""
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed + 1)
    receivers, senders = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    distance = (x[senders.flatten()] - x[receivers.flatten()]).norm(dim=-1)
    keep = (senders.flatten() != receivers.flatten()) & (distance < CUTOFF)
    edge_index = torch.stack([senders.flatten()[keep], receivers.flatten()[keep]])
    state = {
        F.POSITIONS: x,
        F.SPECIES: torch.randint(0, len(SPECIES), (n,), generator=gen),
        F.BATCH: torch.zeros(n, dtype=torch.long),
        F.CELL: torch.zeros(1, 3, 3, dtype=x.dtype),
        F.PBC: torch.zeros(1, 3, dtype=torch.bool),
        F.EDGE_INDEX: edge_index,
        F.EDGE_SHIFTS: torch.zeros(edge_index.shape[1], 3, dtype=torch.long),
    }
    state.update(geometry(state))
    for name, ftype in types.items():
        if name not in state and ftype.irreps is not None and ftype.level is Level.NODE:
            state[name] = torch.randn(n, ftype.irreps.dim, generator=gen, dtype=x.dtype)
    return state


def geometry(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Edge vectors, lengths, a sine radial basis and a cosine envelope, from positions."""
    senders, receivers = state[F.EDGE_INDEX]
    x = state[F.POSITIONS]
    vectors = x[senders] - x[receivers]
    lengths = safe_norm(vectors)  # (E, 1), gradient 0 (not NaN) for coincident atoms
    freqs = torch.arange(1, NUM_RADIAL + 1, dtype=x.dtype) * math.pi / CUTOFF
    return {
        F.EDGE_VECTORS: vectors,
        F.EDGE_LENGTHS: lengths,
        F.EDGE_RADIAL: torch.cos(lengths * freqs),
        F.EDGE_ENVELOPE: 0.5 * (torch.cos(lengths * math.pi / CUTOFF) + 1.0),
    }


def act(
    value: torch.Tensor, ftype: FieldType, R: torch.Tensor, t: torch.Tensor | None
) -> torch.Tensor:
    """``value`` transformed by ``x -> R x + t`` as its type says (exact for 0e/1o)."""
    if ftype.irreps is None:
        return value
    try:
        layout = CartesianLayout.of(ftype.irreps)
    except ValueError:
        moved = value @ ftype.irreps.D_from_matrix(R).T
    else:
        moved = value.clone()
        for sl in layout.vector_slices:
            block = value[..., sl].reshape(*value.shape[:-1], -1, 3) @ R.T
            moved[..., sl] = block.reshape(*value.shape[:-1], -1)
    if ftype.translates and t is not None:
        moved = moved + t
    return moved


def transform_state(state, types, R, t=None) -> dict[str, torch.Tensor]:
    """Inputs under the group element; geometry is recomputed from moved positions."""
    moved = {
        name: act(value, types[name], R, t) if name in types else value
        for name, value in state.items()
    }
    moved.update(geometry(moved))
    return moved


def assert_block_equivariant(block, state, types, *, seed: int = 0) -> None:
    """Rotation, reflection and translation of every field the block writes."""
    with torch.no_grad():
        _check_writes(block, state, types, seed)


def _check_writes(block, state, types, seed: int) -> None:
    base = block(state)
    assert base, "the block wrote nothing"
    for k, (improper, shift) in enumerate(
        [(False, False), (True, False), (False, True), (True, True)]
    ):
        R = rotation(seed + k, improper)
        t = torch.tensor([1.5, -2.0, 0.7], dtype=torch.float64) if shift else None
        moved = block(transform_state(state, types, R, t))
        for name, value in base.items():
            wtype = block.sig.writes[name]
            expected = act(value, wtype, R, t)
            scale = max(float(expected.abs().max()) if expected.numel() else 0.0, 1.0)
            error = float((moved[name] - expected).abs().max()) / scale if value.numel() else 0.0
            assert error < ATOL, (
                f"{name} ({wtype}) breaks {'O(3)' if improper else 'SO(3)'}: {error:.2e}"
            )


def assert_finite_with_gradients(block, state) -> None:
    """Writes and d(writes)/d(positions) are finite (via the recomputed geometry)."""
    x = state[F.POSITIONS].detach().clone().requires_grad_(True)
    live = dict(state, **{F.POSITIONS: x})
    live.update(geometry(live))
    out = block(live)
    total = sum(v.sum() for v in out.values() if v.is_floating_point())
    assert all(torch.isfinite(v).all() for v in out.values() if v.is_floating_point())
    (grad,) = torch.autograd.grad(total, x, allow_unused=True)
    assert grad is None or torch.isfinite(grad).all()
