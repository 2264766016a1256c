"""CGCNN: the gated convolution formula, on a periodic crystal."""

from __future__ import annotations

import ase.build
import torch

import geocompose
from geocompose.nn.interaction.cgcnn import CGCNNInteraction
from geocompose.registry import REGISTRY, Group, Kind
from geocompose.types import fields as F


def test_registered_as_body_order_2_invariant():
    entry = REGISTRY.get(Kind.INTERACTION, "cgcnn")
    assert (entry.body_order, entry.group) == (2, Group.O3)


def test_update_is_the_papers_gated_convolution_times_the_envelope():
    blueprint = {
        "name": "c",
        "symmetry": {"group": "O(3)"},
        "graph": {"type": "radius", "cutoff": 3.0},
        "embedding": {
            "species": ["Na", "Cl"],
            "node": {"type": "learned", "features": 4},
            "radial": {"type": "gaussian", "num": 5},
            "envelope": {"type": "cosine"},
        },
        "interactions": [{"type": "cgcnn"}],
        "readout": {"energy": {"type": "sum"}},
    }
    model = geocompose.compile(blueprint, dtype=torch.float64, seed=0)
    crystal = ase.build.bulk("NaCl", "rocksalt", a=5.64)
    crystal.rattle(0.05, seed=0)
    batch = geocompose.Batch.from_ase(crystal)
    state = model.input_state(batch)
    for block in model.blocks[:3]:
        state.update(block(state))
    conv = model.blocks[3]
    assert isinstance(conv, CGCNNInteraction)
    h, (j, i) = state[F.NODE_FEATURES], state[F.EDGE_INDEX]
    assert (state[F.EDGE_SHIFTS] != 0).any()  # periodic images are neighbours
    expected = h.clone()
    weight, bias = conv.gate_core.weight, conv.gate_core.bias
    total = torch.zeros_like(h)
    for e in range(j.numel()):  # the formula edge by edge, as written in the paper
        z = torch.cat([h[i[e]], h[j[e]], state[F.EDGE_RADIAL][e]])
        gate, core = (weight @ z + bias).chunk(2)
        total[i[e]] += (
            torch.sigmoid(gate) * torch.nn.functional.softplus(core) * state[F.EDGE_ENVELOPE][e]
        )
    expected = torch.nn.functional.softplus(h + total)
    torch.testing.assert_close(conv(state)[F.NODE_FEATURES], expected)
