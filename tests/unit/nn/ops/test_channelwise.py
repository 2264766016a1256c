"""cat_last: torch.cat along the last dimension with a split backward, twice differentiable."""

from __future__ import annotations

import torch

from geocompose.nn.ops.channelwise import cat_last


def test_cat_last_equals_torch_cat_with_first_and_second_derivatives():
    gen = torch.Generator().manual_seed(0)
    parts = [
        torch.randn(4, 3, w, generator=gen, dtype=torch.float64, requires_grad=True)
        for w in (2, 5, 1)
    ]
    assert torch.equal(cat_last(parts), torch.cat(parts, -1))
    assert torch.autograd.gradcheck(lambda *p: cat_last(list(p)), parts)
    assert torch.autograd.gradgradcheck(lambda *p: cat_last(list(p)).pow(2), parts)


def test_cat_last_backward_is_one_split_without_zero_filled_slices():
    """The point of cat_last: the second backward has no slice_backward (which zero-fills
    a full-size tensor per part)."""
    from torch.profiler import ProfilerActivity, profile

    parts = [torch.randn(8, w, dtype=torch.float64, requires_grad=True) for w in (3, 4, 5)]

    def ops(cat) -> set[str]:
        out = cat(parts)
        (grad,) = torch.autograd.grad(out.pow(3).sum(), parts[1], create_graph=True)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            grad.pow(2).sum().backward()
        return {e.key for e in prof.key_averages()}

    assert "aten::slice_backward" in ops(lambda p: torch.cat(p, -1))  # what it avoids
    assert "aten::slice_backward" not in ops(cat_last)
