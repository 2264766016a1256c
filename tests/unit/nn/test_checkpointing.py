"""Checkpointed inference: the same numbers with fewer saved activations.

``GeometricModel.checkpointing = "always"`` runs each interaction block under
``torch.utils.checkpoint``; forward+forces must give bitwise the same outputs in
float64 as the plain call, keep far fewer tensors for the backward pass, and leave
the per-run memos (computed once, shared by the layers) intact. The memory check's
choice between the two modes is tested in test_memory.py.
"""

from __future__ import annotations

from pathlib import Path

import ase.build
import pytest
import torch

import geocompose
from geocompose.data import cache
from geocompose.errors import GeocomposeError

BLUEPRINTS = Path(__file__).parents[3] / "blueprints"


def copper_batch(repeats=(2, 2, 2)):
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True) * repeats
    atoms.rattle(0.05, seed=0)
    return geocompose.Batch.from_ase(atoms)


def compiled(name):
    return geocompose.compile(BLUEPRINTS / f"{name}.yaml", dtype=torch.float64, seed=0).eval()


# dimenet_pp memoises its triplet bases inside its interaction blocks (the case the
# per-run memo has to handle); the others compute their bases before the interactions.
@pytest.mark.parametrize("name", ["schnet", "painn", "mace", "dimenet_pp"])
def test_checkpointed_outputs_equal_plain_ones_bitwise(name):
    model, batch = compiled(name), copper_batch()
    model.checkpointing = "never"
    plain = model(batch)
    model.checkpointing = "always"
    checkpointed = model(batch)
    assert set(plain) == set(checkpointed)
    for key in plain:
        assert torch.equal(plain[key], checkpointed[key]), key


def saved_bytes(model, batch) -> int:
    """Bytes autograd saves for backward outside any checkpoint during one call."""
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        seen.setdefault(storage.data_ptr(), storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(batch)
    return sum(seen.values())


def test_checkpointing_keeps_few_activations_for_the_backward_pass():
    model, batch = compiled("schnet"), copper_batch()
    model.checkpointing = "never"
    plain = saved_bytes(model, batch)
    model.checkpointing = "always"
    # Six layers' activations are no longer kept, only the bases and the readout's.
    assert saved_bytes(model, batch) < 0.3 * plain


def test_a_graph_kept_for_the_caller_differentiates_the_same():
    # Positions that require grad: the call keeps its graph (retain_graph), and a second
    # backward through the checkpointed blocks must give the plain gradient.
    model, batch = compiled("schnet"), copper_batch()
    grads = {}
    for mode in ("never", "always"):
        model.checkpointing = mode
        positions = batch.positions.clone().requires_grad_(True)
        out = model(batch.replace(positions=positions))
        (grads[mode],) = torch.autograd.grad(out["energy"].sum(), positions)
        assert torch.allclose(-grads[mode], out["forces"], rtol=0, atol=1e-12)
    assert torch.equal(grads["never"], grads["always"])


def test_a_memo_computed_inside_a_checkpointed_block_must_keep_its_saved_tensors(monkeypatch):
    # Planted defect: per-run memos computed under the checkpoint's hooks. The block's
    # second run reads the memo from the cache, so its saved tensors are never rebuilt.
    monkeypatch.setattr(
        cache.RunCaches, "per_run", lambda self, key, compute: self.run.cached(key, compute)
    )
    model = compiled("dimenet_pp")
    model.checkpointing = "always"
    with pytest.raises(torch.utils.checkpoint.CheckpointError):
        model(copper_batch())


def test_the_switch_names_its_modes_and_is_an_inference_mode():
    model = compiled("schnet")
    with pytest.raises(GeocomposeError, match="auto, always, never"):
        model.checkpointing = "yes"
    model.checkpointing = "always"
    with pytest.raises(GeocomposeError, match="inference mode"):
        model.train()(copper_batch())
