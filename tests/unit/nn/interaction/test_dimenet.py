"""DimeNet++: the factorised triplet sum is DimeNet++'s function; typing; reuse of triplets."""

from __future__ import annotations

import ase
import ase.build
import numpy as np
import pytest
import torch

import geocompose
from geocompose.data import structures as S
from geocompose.nn.block import BuildContext
from geocompose.nn.embedding.angular_basis import spherical_harmonics_m0
from geocompose.nn.graph import higher_order as H
from geocompose.nn.interaction.dimenet import DimeNetPPInteraction, DimeNetPPParams, layout, rbf
from geocompose.nn.ops.message import EdgeView
from geocompose.nn.ops.scatter import scatter_sum
from geocompose.registry import REGISTRY, Group, Kind
from geocompose.types import FieldType, Level, TypeRefusal
from geocompose.types import fields as F
from geocompose.types.irreps import parse_irreps


def blueprint(repeat=2, **params):
    return {
        "name": "d",
        "symmetry": {"group": "O(3)"},
        "graph": {"type": "radius", "cutoff": 4.0},
        "embedding": {
            "species": ["H", "C", "O", "Cu"],
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "bessel", "num": 5},
        },
        "interactions": [
            {
                "type": "dimenet_pp",
                "hidden": 8,
                "int_emb": 4,
                "out_emb": 8,
                "repeat": repeat,
                **params,
            }
        ],
        "readout": {"energy": {"type": "sum", "hidden": []}, "forces": {"type": "gradient"}},
    }


def sample_batch():
    rng = np.random.default_rng(0)
    cu = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True)
    cu.rattle(0.05, seed=2)
    return geocompose.Batch.from_ase(
        [S.random_molecule(rng, ["H", "C", "O"], 4.0), cu, S.random_cell(rng, ["C", "O"])]
    )


def state_before(model, batch, index):
    state = model.input_state(batch)
    for block in model.blocks[:index]:
        state.update(block(state))
    return state


def test_registered_as_body_order_3_invariant():
    entry = REGISTRY.get(Kind.INTERACTION, "dimenet_pp")
    assert (entry.body_order, entry.group, entry.smooth) == (3, Group.O3, True)


def test_factorised_triplet_sum_is_dimenet_pp_hadamard_form():
    """Ours: sum_l Y_l(t) Z_kj,l (bmm over a padded layout). DimeNet++ (as in the paper and
    PyG): a_SBF per triplet → lin_sbf1 → lin_sbf2, times x_kj[kj], scattered onto ji."""
    model = geocompose.compile(
        blueprint(num_spherical=4, num_radial=3), dtype=torch.float64, seed=0
    )
    batch = sample_batch()
    index = next(i for i, b in enumerate(model.blocks) if isinstance(b, DimeNetPPInteraction))
    block, state = model.blocks[index], state_before(model, batch, index)
    m = block.edge_state(state, EdgeView.from_state(state))
    x_kj = block.down(block.lin_kj(m) * block.rbf_kj(rbf(state)))  # (E, int_emb)
    radial = block.basis(state[F.EDGE_LENGTHS]) * state[F.EDGE_ENVELOPE][:, :, None]  # (E, L, n)
    num_l, num_n, basis_emb = block.sbf1.shape
    # Reference, one triplet at a time in spirit: explicit a_SBF rows.
    kj, ji = H.triplet_index(state[F.EDGE_INDEX], state[F.EDGE_SHIFTS], batch.num_atoms)
    a, b = state[F.EDGE_VECTORS][kj], -state[F.EDGE_VECTORS][ji]
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    sbf = (radial[kj] * spherical_harmonics_m0(num_l - 1, cos)[:, :, None]).reshape(
        len(kj), -1
    )  # (T, L*n)
    weights = block.sbf2(sbf @ block.sbf1.reshape(num_l * num_n, basis_emb))  # (T, int_emb)
    reference = scatter_sum(x_kj[kj] * weights, ji, len(m))
    # Ours.
    triplets = layout(state)
    assert triplets.dense
    per_edge = block.sbf2(torch.einsum("eln,lnb->elb", radial, block.sbf1))
    ours = triplets.contract(
        triplets.harmonics(state[F.EDGE_VECTORS], num_l), x_kj[:, None, :] * per_edge
    )
    torch.testing.assert_close(ours, reference)


def test_dense_and_sparse_layouts_give_the_same_model(monkeypatch):
    model = geocompose.compile(blueprint(), dtype=torch.float64, seed=1)
    batch = sample_batch()
    dense = model(batch)
    monkeypatch.setattr(H, "DENSE_PAD_RATIO", 0.0)  # every fresh layout is sparse
    fresh = batch.replace()
    assert not layout(state_before(model, fresh, 1)).dense
    sparse = model(fresh)
    for name in ("energy", "forces"):
        torch.testing.assert_close(dense[name], sparse[name])


def test_triplets_are_built_once_per_batch_and_shared_by_layers(monkeypatch):
    calls = []
    original = H.triplet_index
    monkeypatch.setattr(H, "triplet_index", lambda *a, **k: calls.append(1) or original(*a, **k))
    model = geocompose.compile(blueprint(repeat=3), dtype=torch.float64, seed=0)
    batch = sample_batch()
    model(batch)
    model(batch)
    assert len(calls) == 1
    model(batch.replace(positions=batch.positions + 0.01))
    assert len(calls) == 2


def test_signature_writes_edge_state_and_refuses_vectors():
    ctx = BuildContext(species=("H",), cutoff=4.0)
    trace = geocompose.check(blueprint(repeat=2, hidden=6))
    first, second = (r for r in trace.rows if r.label == "dimenet_pp")
    assert first.writes[F.EDGE_FEATURES] == FieldType(parse_irreps("6x0e"), Level.EDGE)
    assert F.EDGE_FEATURES not in first.reads and F.EDGE_FEATURES in second.reads
    upstream = dict(F.INPUT_TYPES)
    upstream.update({name: t for row in trace.rows[:3] for name, t in row.writes.items()})
    upstream[F.NODE_FEATURES] = FieldType(parse_irreps("4x0e + 2x1o"), Level.NODE)
    refusal = DimeNetPPInteraction.signature(DimeNetPPParams(), upstream, ctx)
    assert isinstance(refusal, TypeRefusal) and "0e only" in refusal.message


def test_first_block_embeds_edges_and_reads_out_twice():
    model = geocompose.compile(blueprint(repeat=2), dtype=torch.float64, seed=0)
    blocks = [b for b in model.blocks if isinstance(b, DimeNetPPInteraction)]
    assert blocks[0].edge_state.embed and blocks[0].first_output is not None
    assert not blocks[1].edge_state.embed and blocks[1].first_output is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_runs_in_both_dtypes(dtype):
    model = geocompose.compile(blueprint(), dtype=dtype, seed=0)
    out = model(sample_batch().to(dtype))
    assert out["energy"].dtype == dtype and torch.isfinite(out["forces"]).all()
