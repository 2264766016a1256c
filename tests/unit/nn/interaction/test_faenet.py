"""FAENet's GraphNorm: statistics per structure, never across a batch."""

from __future__ import annotations

import torch

from geocompose.nn.interaction.faenet import GraphNorm


def test_graph_norm_normalises_each_structure_on_its_own():
    torch.manual_seed(0)
    x = torch.randn(7, 4, dtype=torch.float64) * 3 + 5  # (atoms, channels)
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    norm = GraphNorm(4).double()
    out = norm(x, batch, 2)
    for b in (0, 1):
        rows = out[batch == b]
        assert torch.allclose(rows.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-12)
        assert torch.allclose(
            rows.pow(2).mean(0), torch.ones(4, dtype=torch.float64), atol=1e-4
        )  # eps 1e-5
    # structure 1 alone gives the same rows: no statistic leaks between structures
    alone = norm(x[3:], torch.zeros(4, dtype=torch.long), 1)
    assert torch.allclose(alone, out[3:], atol=1e-14)


def test_graph_norm_of_a_single_atom_is_finite():
    out = GraphNorm(3).double()(
        torch.randn(1, 3, dtype=torch.float64), torch.zeros(1, dtype=torch.long), 1
    )
    assert torch.isfinite(out).all() and out.abs().max() == 0.0  # centred to 0, beta = 0
