"""The fused gather-multiply-aggregate (SchNet's convolution) equals its plain form."""

from __future__ import annotations

from pathlib import Path

import ase.build
import torch

import geocompose
from geocompose.nn.interaction.schnet import SchNetInteraction
from geocompose.nn.ops.message import EdgeView, aggregate, convolve


def small_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    n, e, f = 5, 14, 3
    senders = torch.randint(0, n, (e,), generator=g)
    receivers = torch.sort(torch.randint(0, n - 1, (e,), generator=g)).values  # atom 4: none
    edges = EdgeView(senders, receivers, n)
    rows = torch.randn(n, f, dtype=torch.float64, generator=g, requires_grad=True)
    filters = torch.randn(e, f, dtype=torch.float64, generator=g, requires_grad=True)
    envelope = torch.rand(e, 1, dtype=torch.float64, generator=g, requires_grad=True)
    return rows, filters, envelope, edges


def test_convolve_is_the_plain_gather_multiply_aggregate():
    rows, filters, envelope, edges = small_problem()
    fused = convolve(rows, filters, envelope, edges)
    plain = aggregate(edges.gather_senders(rows) * filters * envelope, edges)
    torch.testing.assert_close(fused, plain, rtol=1e-12, atol=0)
    assert (fused[4] == 0).all()  # no incoming edge: zeros


def test_convolve_gradients_and_second_derivatives():
    rows, filters, envelope, edges = small_problem(1)
    fn = lambda r, w, u: convolve(r, w, u, edges)
    assert torch.autograd.gradcheck(fn, (rows, filters, envelope))
    assert torch.autograd.gradgradcheck(fn, (rows, filters, envelope))


def test_schnet_layer_equals_its_message_aggregate_form():
    # Forces through the fused layer against the unfused message() + aggregate().
    blueprint = Path(__file__).parents[4] / "blueprints" / "schnet.yaml"
    model = geocompose.compile(blueprint, dtype=torch.float64, seed=0)
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.rattle(0.05, seed=1)
    batch = geocompose.Batch.from_ase(atoms)
    fused = model(batch)
    original = SchNetInteraction.forward
    try:
        # The MessagePassingInteraction path: message() then aggregate().
        SchNetInteraction.forward = SchNetInteraction.__mro__[1].forward
        plain = model(batch.replace())
    finally:
        SchNetInteraction.forward = original
    for name in ("energy", "forces"):
        torch.testing.assert_close(fused[name], plain[name], rtol=1e-10, atol=1e-12)
