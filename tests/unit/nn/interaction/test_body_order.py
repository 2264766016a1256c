"""The body-order knob: 2, 3 and 4-body blocks compose, and degenerate geometry is finite."""

from __future__ import annotations

import ase
import numpy as np
import pytest
import torch

import geocompose
from geocompose.registry import REGISTRY, Kind

SPECIES = ["H", "C", "O", "Cu"]
BLOCKS = {
    "cgcnn": {},
    "dimenet_pp": {"hidden": 8, "int_emb": 4, "out_emb": 8},
    "gemnet_t": {"hidden": 8, "int_emb": 4},
    "gemnet_q": {"hidden": 8, "int_emb": 4},
    "gemnet_q_unsigned": {"hidden": 8, "int_emb": 4},
}


def blueprint(interactions, group="O(3)"):
    return {
        "name": "b",
        "symmetry": {"group": group},
        "graph": {"type": "radius", "cutoff": 4.0},
        # Gaussian radial: the core's sinc-based Bessel radial has a NaN second derivative
        # at r = 0 (coincident atoms), which is not what these tests are about.
        "embedding": {
            "species": SPECIES,
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "gaussian", "num": 6},
        },
        "interactions": interactions,
        "readout": {"energy": {"type": "sum", "hidden": [8]}, "forces": {"type": "gradient"}},
    }


def degenerate_structures() -> dict[str, ase.Atoms]:
    x = np.array([1.0, 0.0, 0.0])
    return {
        # collinear triplets, angles exactly 0 and pi; a straight chain
        "linear chain": ase.Atoms("HCCH", positions=np.outer([0.0, 1.06, 2.26, 3.32], x)),
        # every quadruplet planar (dihedral 0 or pi): ethylene
        "planar": ase.Atoms(
            "C2H4",
            positions=[
                [0, 0, 0],
                [1.33, 0, 0],
                [-0.57, 0.93, 0],
                [-0.57, -0.93, 0],
                [1.9, 0.93, 0],
                [1.9, -0.93, 0],
            ],
        ),
        # all neighbours at the same distance, tetrahedral: methane
        "equal distances": ase.Atoms(
            "CH4",
            positions=[
                [0, 0, 0],
                [0.63, 0.63, 0.63],
                [-0.63, -0.63, 0.63],
                [-0.63, 0.63, -0.63],
                [0.63, -0.63, -0.63],
            ],
        ),
        # coincident atoms: a zero-length edge (unit vector undefined)
        "coincident": ase.Atoms("CHO", positions=[[0, 0, 0], [0, 0, 0], [1.2, 0, 0]]),
        # a perfect crystal: ties everywhere, images of the receiver as triplet partners
        "fcc": ase.Atoms(
            "Cu",
            positions=[[0, 0, 0]],
            cell=[[0, 1.8, 1.8], [1.8, 0, 1.8], [1.8, 1.8, 0]],
            pbc=True,
        ),
    }


def test_knob_offers_body_orders_2_3_and_4():
    orders = {n: REGISTRY.get(Kind.INTERACTION, n).body_order for n in ["schnet", *BLOCKS]}
    assert {orders[n] for n in orders} == {2, 3, 4}


@pytest.mark.parametrize("block", list(BLOCKS))
def test_degenerate_geometry_gives_finite_energies_and_forces(block):
    group = "SO(3)" if block == "gemnet_q" else "O(3)"
    model = geocompose.compile(
        blueprint([{"type": block, **BLOCKS[block], "repeat": 2}], group),
        dtype=torch.float64,
        seed=0,
    )
    for label, atoms in degenerate_structures().items():
        batch = geocompose.Batch.from_ase(atoms)
        positions = batch.positions.clone().requires_grad_(True)
        out = model(batch.replace(positions=positions))
        assert torch.isfinite(out["energy"]).all(), label
        assert torch.isfinite(out["forces"]).all(), label
        # second derivatives too (training on forces differentiates the forces); a random
        # weighting, since the plain sum of forces is identically zero
        weights = torch.randn(
            out["forces"].shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
        )
        (hessian_row,) = torch.autograd.grad(
            (out["forces"] * weights).sum(), positions, allow_unused=True
        )
        assert hessian_row is None or torch.isfinite(hessian_row).all(), label


def test_mixed_body_orders_compose_and_share_one_edge_state():
    interactions = [
        {"type": "schnet", "filters": 8},
        {"type": "dimenet_pp", **BLOCKS["dimenet_pp"]},
        {"type": "gemnet_t", "hidden": 6, "int_emb": 4},
        {"type": "gemnet_q_unsigned", "hidden": 6, "int_emb": 4},
    ]
    trace = geocompose.check(blueprint(interactions))
    assert trace.derived.value == "O(3)"
    rows = {r.label: r for r in trace.rows}
    # gemnet_t reads the 8-wide messages dimenet_pp wrote and writes its own 6-wide ones
    assert rows["gemnet_t"].reads["edge_features"].irreps.dim == 8
    assert rows["gemnet_q_unsigned"].reads["edge_features"].irreps.dim == 6
    model = geocompose.compile(blueprint(interactions), dtype=torch.float64, seed=0)
    out = model(geocompose.Batch.from_ase(degenerate_structures()["planar"]))
    assert torch.isfinite(out["forces"]).all()
