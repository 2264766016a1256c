"""The fused gather-multiply-aggregate steps (SchNet's convolution, PaiNN's
scalar-vector message) equal their plain forms, with gradients to second order."""

from __future__ import annotations

from pathlib import Path

import ase.build
import pytest
import torch

import geocompose
from geocompose.nn.interaction.painn import PaiNNInteraction
from geocompose.nn.interaction.schnet import SchNetInteraction
from geocompose.nn.memory import probe_batch, profile
from geocompose.nn.ops import message
from geocompose.nn.ops.message import EdgeView, aggregate, convolve, convolve_vectors


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


# PaiNN's scalar-vector convolution (convolve_vectors).


def vector_problem(seed=0, with_vectors=True):
    g = torch.Generator().manual_seed(seed)
    n, e, f = 6, 12, 2
    senders = torch.randint(0, n, (e,), generator=g)
    receivers = torch.sort(torch.randint(0, n - 1, (e,), generator=g)).values  # atom 5: none
    edges = EdgeView(senders, receivers, n)
    rand = lambda *shape: torch.randn(*shape, dtype=torch.float64, generator=g)
    inputs = [rand(n, 3 * f), rand(e, 3 * f), rand(e, 1).abs(), rand(e, 3)]
    inputs.append(rand(n, 3, f) if with_vectors else None)
    return [t if t is None else t.requires_grad_(True) for t in inputs], edges


def plain_vectors(rows, filters, envelope, directions, vectors, edges):
    """Eqs. 7-8 with autograd's ops: gather, multiply, sum onto receivers."""
    x_s, x_vv, x_vs = (edges.gather_senders(rows) * filters * envelope).chunk(3, dim=-1)
    messages = x_vs.unsqueeze(1) * directions.unsqueeze(-1)  # (E, 3, F)
    if vectors is not None:
        messages = messages + x_vv.unsqueeze(1) * edges.gather_senders(vectors)
    return aggregate(x_s, edges), aggregate(messages, edges)


@pytest.fixture(params=[2048, 5], ids=["one chunk", "chunks of 5 edges"])
def edge_chunk(request, monkeypatch):
    # 12 edges in chunks of 5: two full chunks and a partial one.
    monkeypatch.setattr(message, "EDGE_CHUNK", request.param)
    return request.param


@pytest.mark.parametrize("with_vectors", [True, False])
def test_convolve_vectors_is_the_plain_message_sum(edge_chunk, with_vectors):
    inputs, edges = vector_problem(2, with_vectors)
    fused, plain = convolve_vectors(*inputs, edges), plain_vectors(*inputs, edges)
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert (fused[0][5] == 0).all() and (fused[1][5] == 0).all()  # no incoming edge
    # The form torch.compile and torch.export trace, on the whole edge set at once.
    index = (edges.senders, edges.receivers, edges.num_nodes)
    traced = message._plain_convolve_vectors(*inputs, *index)
    torch.testing.assert_close(traced, torch.cat([fused[0], fused[1].flatten(1)], -1))
    # The gradients of a forces-like call (no create_graph: the in-place backward).
    cotangents = [torch.randn_like(t) for t in fused]
    wrt = [t for t in inputs if t is not None]
    grads_fused = torch.autograd.grad(fused, wrt, cotangents)
    grads_plain = torch.autograd.grad(plain, wrt, cotangents)
    for a, b in zip(grads_fused, grads_plain):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("with_vectors", [True, False])
def test_convolve_vectors_gradients_and_second_derivatives(edge_chunk, with_vectors):
    inputs, edges = vector_problem(3, with_vectors)
    wrt = [t for t in inputs if t is not None]
    fn = lambda *t: convolve_vectors(*t, *([None] if not with_vectors else []), edges)
    assert torch.autograd.gradcheck(fn, wrt)
    assert torch.autograd.gradgradcheck(fn, wrt)


def test_the_in_place_backward_leaves_its_inputs_alone(edge_chunk):
    # The in-place backward writes only into its own buffers: the saved inputs (which
    # autograd may hand to other nodes) are the same after it as before.
    inputs, edges = vector_problem(4)
    before = [t.detach().clone() for t in inputs]
    scalars, vectors = convolve_vectors(*inputs, edges)
    (scalars.sum() + vectors.pow(2).sum()).backward()
    for t, saved in zip(inputs, before):
        assert torch.equal(t.detach(), saved)


def painn_forces(model, batch):
    return {k: v.detach() for k, v in model(batch).items() if k in ("energy", "forces")}


def test_painn_layer_equals_its_message_aggregate_form():
    blueprint = Path(__file__).parents[4] / "blueprints" / "painn.yaml"
    model = geocompose.compile(blueprint, dtype=torch.float64, seed=0)
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.rattle(0.05, seed=1)
    batch = geocompose.Batch.from_ase(atoms)
    fused = painn_forces(model, batch)
    original = PaiNNInteraction.forward
    try:
        PaiNNInteraction.forward = PaiNNInteraction.__mro__[1].forward  # message + update
        plain = painn_forces(model, batch.replace())
    finally:
        PaiNNInteraction.forward = original
    for name in ("energy", "forces"):
        torch.testing.assert_close(fused[name], plain[name], rtol=1e-10, atol=1e-12)


def test_painn_saves_less_per_edge_than_its_message_aggregate_form():
    # What the fused step is for: in a forces call (eval mode: no create_graph),
    # autograd keeps no (E, 3F) products per layer.
    blueprint = Path(__file__).parents[4] / "blueprints" / "painn.yaml"
    model = geocompose.compile(blueprint, dtype=torch.float32, seed=0).eval()
    probe = probe_batch(geocompose.Batch.from_ase(ase.build.bulk("Cu", "fcc", a=3.61, cubic=True)))
    fused = profile(model, probe).per_edge
    original = PaiNNInteraction.forward
    try:
        PaiNNInteraction.forward = PaiNNInteraction.__mro__[1].forward
        plain = profile(model, probe).per_edge
    finally:
        PaiNNInteraction.forward = original
    assert fused < 0.5 * plain, (fused, plain)


@pytest.mark.parametrize(("limit", "fused_calls"), [(12, 0), (11, 1)])
def test_a_small_training_call_runs_the_plain_ops(monkeypatch, limit, fused_calls):
    """Up to PLAIN_TRAINING_EDGES edges a training call keeps its products (the plain
    ops); above it, and in any call that is not training, the fused step runs."""
    monkeypatch.setattr(message, "PLAIN_TRAINING_EDGES", limit)  # the problem has 12 edges
    calls = []
    fused = message._ConvolveVectors.apply
    monkeypatch.setattr(message._ConvolveVectors, "apply", lambda *a: calls.append(1) or fused(*a))
    inputs, edges = vector_problem(5)
    training = convolve_vectors(*inputs, edges, training=True)
    assert len(calls) == fused_calls
    convolve_vectors(*inputs, edges)
    assert len(calls) == fused_calls + 1  # not training: fused whatever the size
    for a, b in zip(training, plain_vectors(*inputs, edges)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
