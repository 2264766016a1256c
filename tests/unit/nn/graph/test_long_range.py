"""The long-range edge set: built beside the local one, typed, and used only on request."""

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

import geocompose
from geocompose.errors import BlueprintError
from geocompose.types import fields as F


def blueprint(long_range_cutoff=7.0, interactions=None):
    return {
        "name": "lr",
        "symmetry": {"group": "O(3)"},
        "graph": {
            "type": "radius",
            "cutoff": 3.0,
            **({"long_range_cutoff": long_range_cutoff} if long_range_cutoff else {}),
        },
        "embedding": {
            "species": ["H", "C", "O", "Cu"],
            "node": {"type": "learned", "features": 4},
            "radial": {"type": "bessel", "num": 4},
            "envelope": {"type": "polynomial"},
        },
        "interactions": interactions
        or [{"type": "schnet", "filters": 4}, {"type": "long_range", "filters": 4}],
        "readout": {"energy": {"type": "sum"}, "forces": {"type": "gradient"}},
    }


def test_long_range_edges_match_a_brute_force_count():
    model = geocompose.compile(blueprint(), dtype=torch.float64)
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    batch = geocompose.Batch.from_ase([atoms])
    topo = model.graph.topology(batch)
    # brute force over images within range
    pos, cell = atoms.positions, atoms.cell.array
    count_local = count_far = 0
    for n in np.ndindex(7, 7, 7):
        shift = (np.array(n) - 3) @ cell
        d = np.linalg.norm(pos[None, :, :] + shift - pos[:, None, :], axis=-1)
        count_local += int(((d > 0) & (d < 3.0)).sum())
        count_far += int(((d > 0) & (d < 7.0)).sum())
    assert topo[F.EDGE_INDEX].shape[1] == count_local
    assert topo[F.LONG_RANGE_EDGE_INDEX].shape[1] == count_far


def test_long_range_interaction_without_long_range_edges_is_refused():
    with pytest.raises(BlueprintError, match="long_range_cutoff"):
        geocompose.compile(blueprint(long_range_cutoff=None))


def test_long_range_cutoff_must_exceed_cutoff():
    with pytest.raises(BlueprintError, match="must exceed cutoff"):
        geocompose.compile(blueprint(long_range_cutoff=2.0))


def test_long_range_sees_beyond_the_local_cutoff():
    """Moving a far atom (between 3 and 7 Å) changes the energy only through long_range."""
    model = geocompose.compile(blueprint(), dtype=torch.float64, seed=0)
    water = molecule("H2O")
    far = water.copy()
    far.translate([5.0, 0.0, 0.0])
    nearer = water.copy()
    nearer.translate([5.5, 0.0, 0.0])
    e1 = model(geocompose.Batch.from_ase([water + far]))["energy"]
    e2 = model(geocompose.Batch.from_ase([water + nearer]))["energy"]
    assert not torch.allclose(e1, e2)
    local = geocompose.compile(
        blueprint(interactions=[{"type": "schnet", "filters": 4}]), dtype=torch.float64, seed=0
    )
    l1 = local(geocompose.Batch.from_ase([water + far]))["energy"]
    l2 = local(geocompose.Batch.from_ase([water + nearer]))["energy"]
    assert torch.allclose(l1, l2)


def test_point_cloud_has_no_edges_and_a_model_still_runs():
    bp = blueprint(long_range_cutoff=None, interactions=[{"type": "schnet", "filters": 4}])
    bp["graph"] = {"type": "point_cloud"}
    model = geocompose.compile(bp, dtype=torch.float64)
    batch = geocompose.Batch.from_ase([molecule("H2O")])
    assert model.graph.topology(batch)[F.EDGE_INDEX].shape == (2, 0)
    out = model(batch)
    assert torch.isfinite(out["energy"]).all() and torch.equal(
        out["forces"], torch.zeros(3, 3, dtype=torch.float64)
    )
