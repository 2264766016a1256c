"""Shared helpers for the spherical-family tests (TFN, NequIP, MACE): hand-made states
with edge spherical harmonics, and a direct float64 equivariance check of one block.

Group elements act on every field through ``geocompose.types.irreps.wigner_d``, which is
accurate to ~1e-15 (e3nn's ``D_from_matrix`` goes through Euler angles and loses ~1e-7
near gimbal lock); the parity factor of improper ``-R`` enters as in e3nn, so odd-parity
features (``0o``, ``1e``, ``2o``) flip exactly where they must.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3

from geocompose.data.rotations import haar_rotations
from geocompose.nn.block import BuildContext
from geocompose.nn.graph.base import safe_norm
from geocompose.types import FieldType, Level, discrete, scalars
from geocompose.types import fields as F
from geocompose.types.irreps import wigner_d

SPECIES = ("H", "C", "N", "O", "Cu")
CUTOFF = 5.0
NUM_RADIAL = 6
RTOL = 1e-11  # float64 equivariance, relative to the output scale


def rotation(seed: int, improper: bool = False) -> torch.Tensor:
    """A Haar-random float64 rotation, times -1 for an improper one."""
    R = haar_rotations(1, torch.Generator().manual_seed(seed))[0]
    return -R if improper else R


def ctx(knob: str = "interactions[0]", output: str = "") -> BuildContext:
    return BuildContext(species=SPECIES, cutoff=CUTOFF, knob=knob, output=output)


def upstream(features: str, l_max: int | None = 2) -> dict[str, FieldType]:
    """Field types after the edge embedding (with harmonics up to ``l_max`` unless None)."""
    types = {
        **F.INPUT_TYPES,
        F.EDGE_INDEX: discrete(Level.EDGE),
        F.EDGE_SHIFTS: discrete(Level.EDGE),
        F.EDGE_VECTORS: FieldType(o3.Irreps("1o"), Level.EDGE),
        F.EDGE_LENGTHS: scalars(1, Level.EDGE),
        F.EDGE_RADIAL: scalars(NUM_RADIAL, Level.EDGE),
        F.EDGE_ENVELOPE: scalars(1, Level.EDGE),
        F.NODE_FEATURES: FieldType(o3.Irreps(features), Level.NODE),
    }
    if l_max is not None:
        types[F.EDGE_ANGULAR] = FieldType(o3.Irreps.spherical_harmonics(l_max), Level.EDGE)
    return types


def positions(seed: int, n: int = 6) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 3.0 * torch.rand(n, 3, generator=gen, dtype=torch.float64)


def state_for(
    x: torch.Tensor, types: dict[str, FieldType], seed: int = 0
) -> dict[str, torch.Tensor]:
    """A state for one molecule at ``x``: all pairs within the cutoff, random features."""
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed + 1)
    receivers, senders = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    receivers, senders = receivers.flatten(), senders.flatten()
    keep = (senders != receivers) & ((x[senders] - x[receivers]).norm(dim=-1) < CUTOFF)
    edge_index = torch.stack([senders[keep], receivers[keep]])  # sorted by receiver
    state = {
        F.POSITIONS: x,
        F.SPECIES: torch.randint(0, len(SPECIES), (n,), generator=gen),
        F.BATCH: torch.zeros(n, dtype=torch.long),
        F.CELL: torch.zeros(1, 3, 3, dtype=x.dtype),
        F.PBC: torch.zeros(1, 3, dtype=torch.bool),
        F.EDGE_INDEX: edge_index,
        F.EDGE_SHIFTS: torch.zeros(edge_index.shape[1], 3, dtype=torch.long),
        F.NODE_FEATURES: torch.randn(
            n, types[F.NODE_FEATURES].irreps.dim, generator=gen, dtype=x.dtype
        ),
    }
    state.update(geometry(state, types))
    return state


def geometry(
    state: dict[str, torch.Tensor], types: dict[str, FieldType]
) -> dict[str, torch.Tensor]:
    """Edge vectors, lengths, a sine basis, a cosine envelope and harmonics, from positions."""
    senders, receivers = state[F.EDGE_INDEX]
    x = state[F.POSITIONS]
    vectors = x[senders] - x[receivers]
    lengths = safe_norm(vectors)
    freqs = torch.arange(1, NUM_RADIAL + 1, dtype=x.dtype) * math.pi / CUTOFF
    out = {
        F.EDGE_VECTORS: vectors,
        F.EDGE_LENGTHS: lengths,
        F.EDGE_RADIAL: torch.sin(lengths * freqs) / lengths.clamp(min=1e-9),
        F.EDGE_ENVELOPE: 0.5 * (torch.cos(lengths * math.pi / CUTOFF) + 1.0),
    }
    if F.EDGE_ANGULAR in types:
        irreps = types[F.EDGE_ANGULAR].irreps
        out[F.EDGE_ANGULAR] = o3.spherical_harmonics(
            irreps, vectors / lengths.clamp(min=1e-12), normalize=False, normalization="component"
        )
    return out


def transform_state(state, types, R) -> dict[str, torch.Tensor]:
    """Positions and node features moved by ``R``; edge geometry recomputed from them."""
    moved = dict(state)
    moved[F.POSITIONS] = state[F.POSITIONS] @ R.T
    moved[F.NODE_FEATURES] = state[F.NODE_FEATURES] @ wigner_d(types[F.NODE_FEATURES].irreps, R).T
    moved.update(geometry(moved, types))
    return moved


def equivariance_errors(block, state, types, seed: int = 0) -> dict[str, float]:
    """Largest relative error of the written node features under R and under -R."""
    errors = {}
    with torch.no_grad():
        base = block(state)[F.NODE_FEATURES]
        irreps_out = block.sig.writes[F.NODE_FEATURES].irreps
        for improper in (False, True):
            R = rotation(seed, improper)
            moved = block(transform_state(state, types, R))[F.NODE_FEATURES]
            expected = base @ wigner_d(irreps_out, R).T
            scale = max(float(expected.abs().max()), 1.0)
            errors["O(3)" if improper else "SO(3)"] = float((moved - expected).abs().max()) / scale
    return errors


def assert_block_equivariant(block, state, types, seed: int = 0) -> None:
    for group, error in equivariance_errors(block, state, types, seed).items():
        assert error < RTOL, f"{type(block).__name__} breaks {group}: relative error {error:.2e}"


def odd_features(channels: int = 2) -> str:
    """Node irreps with every parity up to l = 2, so reflection bugs cannot hide."""
    c = channels
    return f"{2 * c}x0e + {c}x0o + {c}x1o + {c}x1e + {c}x2e + {c}x2o"
