"""Haar-random rotations: the one sampler of group elements of O(3) and SO(3).

The verifier, the augmentation strategy and the tests all draw rotations here. It sits
in ``data`` (below ``nn`` and ``verify`` in the import layers) so every layer can use it.
"""

from __future__ import annotations

import torch

__all__ = ["haar_rotations"]


def haar_rotations(
    count: int,
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    proper: bool = True,
) -> torch.Tensor:
    """``count`` Haar-random orthogonal matrices (count, 3, 3).

    The Q of the QR decomposition of a Gaussian matrix, with the signs of R's diagonal
    moved into Q, is Haar-distributed on O(3) (Mezzadri, Notices AMS 54, 2007); flipping
    the first column of those with ``det = -1`` keeps the distribution Haar on SO(3).

    Args:
        count: how many matrices.
        generator: the random stream (None: torch's global one, for training-time
            strategies whose randomness the trainer seeds).
        dtype: the Gaussian is drawn (and QR done) in this dtype; the verifier uses float64.
        device: where to draw.
        proper: rotations only (SO(3)); False draws from all of O(3).
    """
    gaussian = torch.randn(count, 3, 3, generator=generator, dtype=dtype, device=device)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    if proper:
        flip = torch.where(torch.det(q) < 0, -1.0, 1.0).to(dtype)  # (count,)
        q[..., :, 0] = q[..., :, 0] * flip.unsqueeze(-1)
    return q
