"""Aggregation on PyTorch's native scatter ops (``index_add_``), the only backend.

Measured on the 2-core CPU this project targets: ``index_add_`` over 1M edges is 4x
faster with receiver-sorted edges (graph builders sort them), and a mean as
``index_add_`` / count is ~7x faster forward+backward than ``scatter_reduce(mean)``.
"""

from __future__ import annotations

import torch


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Sum rows of ``src`` (R, ...) into ``dim_size`` buckets given by ``index`` (R,)."""
    out = src.new_zeros((dim_size,) + tuple(src.shape[1:]))
    return out.index_add_(0, index, src)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Mean of rows per bucket; empty buckets give 0 (never 0/0 = NaN)."""
    total = scatter_sum(src, index, dim_size)
    count = torch.zeros(dim_size, dtype=src.dtype, device=src.device)
    count.index_add_(0, index, torch.ones_like(index, dtype=src.dtype))
    return total / count.clamp(min=1).view((-1,) + (1,) * (src.dim() - 1))
