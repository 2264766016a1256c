"""EGNN: typing, the coordinate update, equivariance of h and of the moved positions."""

from __future__ import annotations

import ase
import numpy as np
import pytest
import torch
from cartesian_cases import (
    CUTOFF,
    assert_block_equivariant,
    assert_finite_with_gradients,
    ctx,
    positions,
    state_for,
    upstream,
)

import geocompose
from geocompose.nn.interaction.egnn import UPDATED_POSITIONS_TYPE, EGNNInteraction, EGNNParams
from geocompose.types import TypeRefusal
from geocompose.types import fields as F


def build(features="6x0e", seed=0, moved_before=False, **params):
    torch.manual_seed(seed)
    types = upstream(
        features, **({F.UPDATED_POSITIONS: UPDATED_POSITIONS_TYPE} if moved_before else {})
    )
    return EGNNInteraction(EGNNParams(hidden=5, **params), types, ctx()).double(), types


def test_signature():
    sig = EGNNInteraction.signature(EGNNParams(), upstream("6x0e"), ctx())
    assert set(sig.writes) == {F.NODE_FEATURES}
    sig = EGNNInteraction.signature(EGNNParams(update_positions=True), upstream("6x0e"), ctx())
    assert (
        sig.writes[F.UPDATED_POSITIONS] == UPDATED_POSITIONS_TYPE
        and UPDATED_POSITIONS_TYPE.translates
    )
    later = upstream("6x0e", **{F.UPDATED_POSITIONS: UPDATED_POSITIONS_TYPE})
    assert F.UPDATED_POSITIONS in EGNNInteraction.signature(EGNNParams(), later, ctx()).reads
    refusal = EGNNInteraction.signature(EGNNParams(), upstream("6x0e + 6x1o"), ctx())
    assert isinstance(refusal, TypeRefusal) and "{type: scalars}" in refusal.hint


@pytest.mark.parametrize(
    ("update", "moved_before", "attention"),
    [(False, False, False), (True, False, True), (True, True, False), (False, True, True)],
)
def test_equivariant_under_rotation_reflection_translation(update, moved_before, attention):
    block, types = build(update_positions=update, moved_before=moved_before, attention=attention)
    state = state_for(positions(1, n=7), types)
    out = block(state)
    if update:
        assert (out[F.UPDATED_POSITIONS] - state[F.POSITIONS]).abs().max() > 1e-6, (
            "atoms did not move"
        )
    assert_block_equivariant(block, state, types, seed=5)


def test_matches_a_transcription_of_the_paper_equations():
    block, types = build(update_positions=True, moved_before=True, seed=3)
    state = state_for(positions(2, n=4), types)
    h, x0, x = state[F.NODE_FEATURES], state[F.POSITIONS], state[F.UPDATED_POSITIONS]
    m_sum, dx = torch.zeros(4, 5, dtype=torch.float64), torch.zeros(4, 3, dtype=torch.float64)
    for e, (j, i) in enumerate(state[F.EDGE_INDEX].T.tolist()):
        u = 0.5 * (torch.cos((x0[j] - x0[i]).norm() * torch.pi / CUTOFF) + 1)
        inputs = torch.cat(
            [
                h[i],
                h[j],
                ((x[i] - x[j]).pow(2).sum() / CUTOFF**2).reshape(1),
                state[F.EDGE_RADIAL][e],
            ]
        )
        m = block.phi_e(inputs) * u
        m_sum[i] += m
        dx[i] += (x[i] - x[j]) * block.phi_x(m) * u
    out = block(state)
    assert torch.allclose(
        out[F.NODE_FEATURES], h + block.phi_h(torch.cat([h, m_sum], -1)), atol=1e-12
    )
    assert torch.allclose(out[F.UPDATED_POSITIONS], x + dx / 10.0, atol=1e-12)


@pytest.mark.parametrize("update", [False, True])
def test_finite_with_coincident_and_isolated_atoms(update):
    block, types = build(update_positions=update)
    state = state_for(positions(6, n=4, coincident=True, isolated=True), types)
    assert (state[F.EDGE_LENGTHS] == 0).any()
    out = block(state)
    if update:  # the isolated atom does not move
        assert torch.equal(out[F.UPDATED_POSITIONS][-1], state[F.POSITIONS][-1])
    assert_finite_with_gradients(block, state)


def egnn_blueprint(**egnn) -> dict:
    return {
        "name": "egnn_test",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": {"type": "radius", "cutoff": 4.0},
        "embedding": {
            "species": ["H", "C", "Cu"],
            "node": {"type": "learned", "features": 4},
            "radial": {"type": "gaussian", "num": 4},
            "envelope": {"type": "polynomial", "p": 6},
        },
        "interactions": [
            {"type": "egnn", "hidden": 4, "update_positions": True, "repeat": 2, **egnn}
        ],
        "readout": {"energy": {"type": "sum", "hidden": [4]}, "moved": {"type": "positions"}},
    }


def test_moved_positions_follow_periodic_images():
    """Replacing an atom by another periodic image moves its output by that lattice
    vector and leaves every other output unchanged."""
    model = geocompose.compile(egnn_blueprint(), dtype=torch.float64, seed=0)
    rng = np.random.default_rng(0)
    cell = np.array([[3.5, 0.1, 0.0], [0.2, 3.8, 0.0], [0.0, 0.3, 4.1]])
    atoms = ase.Atoms("CuCHC", positions=rng.random((4, 3)) @ cell, cell=cell, pbc=True)
    batch = geocompose.Batch.from_ase(atoms)
    base = model(batch)
    lattice = torch.tensor(cell[0] - cell[2], dtype=torch.float64)
    shifted = batch.positions.clone()
    shifted[1] += lattice
    moved = model(batch.replace(positions=shifted))
    expected = base["moved"].clone()
    expected[1] += lattice
    assert torch.allclose(moved["moved"], expected, atol=1e-12)
    assert torch.allclose(moved["energy"], base["energy"], atol=1e-12)
    assert (base["moved"] - batch.positions).abs().max() > 1e-6


def test_without_updates_the_positions_output_is_refused():
    spec = egnn_blueprint(update_positions=False)
    with pytest.raises(geocompose.BlueprintError, match="update_positions: true") as err:
        geocompose.compile(spec)
    assert err.value.knob == "readout.moved"
