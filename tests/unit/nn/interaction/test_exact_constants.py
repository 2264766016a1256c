"""``exact_constants``: e3nn modules built inside it get float64 constants and weights,
while the process-wide default dtype, other threads and integer factories stay as they were."""

from __future__ import annotations

import threading

import numpy as np
import torch
from e3nn import o3

from geocompose.nn.interaction.spherical import exact_constants


def test_e3nn_constants_are_float64_and_the_default_dtype_is_untouched():
    assert torch.get_default_dtype() == torch.float32
    irreps = o3.Irreps("2x0e + 2x1o + 1x2e")
    with exact_constants():
        assert torch.get_default_dtype() == torch.float32  # never flipped
        tp = o3.FullyConnectedTensorProduct(irreps, irreps, irreps)
        w3j = o3.wigner_3j(1, 1, 2)
        seen_by_thread = []
        thread = threading.Thread(target=lambda: seen_by_thread.append(torch.zeros(1).dtype))
        thread.start()
        thread.join()
        ints = (torch.arange(3), torch.tensor([1, 2]), torch.full((2,), 1), torch.tensor([True]))
        explicit = torch.zeros(2, dtype=torch.float32)
        from_numpy = torch.as_tensor(np.zeros(2, dtype=np.float32))
    assert seen_by_thread == [torch.float32]
    assert all(p.dtype == torch.float64 for p in tp.parameters())
    assert w3j.dtype == torch.float64
    assert torch.equal(w3j, o3.wigner_3j(1, 1, 2, dtype=torch.float64))
    assert o3.wigner_3j(1, 1, 2).dtype == torch.float32  # outside the block: the default again
    assert [t.dtype for t in ints] == [torch.int64, torch.int64, torch.int64, torch.bool]
    assert explicit.dtype == torch.float32 and from_numpy.dtype == torch.float32
    with exact_constants():
        floats = (torch.tensor([0.5]), torch.arange(0.0, 1.0, 0.5), torch.full((1,), 0.5))
    assert all(t.dtype == torch.float64 for t in floats)


def test_weights_drawn_inside_equal_a_float64_default_build():
    """The same random stream as building with a float64 default: a seed gives the same model."""
    torch.manual_seed(0)
    with exact_constants():
        inside = o3.Linear("4x0e + 2x1o", "3x0e + 3x1o")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the reference only; restored at once
    try:
        torch.manual_seed(0)
        reference = o3.Linear("4x0e + 2x1o", "3x0e + 3x1o")
    finally:
        torch.set_default_dtype(previous)
    assert torch.equal(inside.weight, reference.weight)
