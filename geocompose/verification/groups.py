"""Group elements, sampled in float64 with an explicit generator (no global RNG)."""

from __future__ import annotations

import torch

from geocompose.data.rotations import haar_rotations


def haar_rotation(generator: torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A Haar-random proper rotation (3, 3), drawn in float64 (:func:`haar_rotations`)."""
    return haar_rotations(1, generator)[0].to(dtype)


def improper_rotation(
    generator: torch.Generator, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """A random element of O(3) \\ SO(3): a rotation composed with the inversion."""
    return -haar_rotation(generator, dtype)


def translation(
    generator: torch.Generator, scale: float = 5.0, dtype=torch.float64
) -> torch.Tensor:
    """A random translation vector (3,) of typical length ``scale`` Å."""
    return (scale * torch.randn(3, generator=generator, dtype=torch.float64)).to(dtype)


def permutation_within(batch_index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A permutation of atoms that keeps each atom in its structure: new[i] = old[p[i]]."""
    perm = torch.arange(batch_index.numel())
    for s in batch_index.unique():
        idx = (batch_index == s).nonzero().flatten()
        perm[idx] = idx[torch.randperm(idx.numel(), generator=generator)]
    return perm


def unimodular_cell_change(pbc: torch.Tensor) -> torch.Tensor:
    """An integer matrix of determinant 1 mixing only periodic lattice vectors.

    ``M @ cell`` spans the same lattice: an equivalent choice of cell.
    """
    m = torch.eye(3, dtype=torch.float64)
    periodic = pbc.nonzero().flatten().tolist()
    if len(periodic) >= 2:
        a, b = periodic[:2]
        m[a, b] = 1.0  # a' = a + b
    if len(periodic) == 3:
        m[periodic[2], periodic[0]] = -1.0  # c' = c - a
    return m
