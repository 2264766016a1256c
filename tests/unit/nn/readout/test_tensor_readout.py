"""The `tensor` readout: equivariant per-structure tensors, refusal when no field provides them."""

from __future__ import annotations

import pytest
import torch
from e3nn import io, o3

import geocompose
from geocompose.data.rotations import haar_rotations
from geocompose.errors import BlueprintError
from geocompose.nn.block import BuildContext
from geocompose.nn.readout.tensor import TensorReadout, TensorReadoutParams
from geocompose.types import FieldType, Level, TypeRefusal
from geocompose.types import fields as F
from geocompose.types.irreps import wigner_d


def upstream(features: str) -> dict:
    return {**F.INPUT_TYPES, F.NODE_FEATURES: FieldType(o3.Irreps(features), Level.NODE)}


CTX = BuildContext(
    species=("H", "C"), cutoff=5.0, knob="readout.polarizability", output="polarizability"
)


def test_refuses_an_output_no_field_provides():
    params = TensorReadoutParams(irreps="1x2e")
    refusal = TensorReadout.signature(params, upstream("8x0e + 4x1o"), CTX)
    assert isinstance(refusal, TypeRefusal)
    assert (
        "2e" in refusal.message
        and "polarizability" in refusal.message
        and "features" in refusal.hint
    )


def test_parity_matters_in_the_refusal():
    refusal = TensorReadout.signature(
        TensorReadoutParams(irreps="1x1e"), upstream("8x0e + 4x1o"), CTX
    )
    assert isinstance(refusal, TypeRefusal) and "1e" in refusal.message


def test_writes_per_structure_and_per_atom_types():
    params = TensorReadoutParams(irreps="1x0e + 1x2e", per_atom="atomic_polarizability")
    sig = TensorReadout.signature(params, upstream("4x0e + 2x1o + 2x2e"), CTX)
    assert sig.writes["polarizability"] == FieldType(o3.Irreps("1x0e + 1x2e"), Level.STRUCTURE)
    assert sig.writes["atomic_polarizability"].level is Level.NODE


@pytest.mark.parametrize("pool", ["sum", "mean"])
def test_pools_per_structure_and_transforms_by_its_irreps(pool):
    torch.manual_seed(0)
    features = o3.Irreps("4x0e + 2x1o + 3x2e + 1x2o")
    block = TensorReadout(
        TensorReadoutParams(irreps="1x0e + 2x2e", pool=pool), upstream(str(features)), CTX
    ).double()
    x = torch.randn(5, features.dim, dtype=torch.float64)
    state = {
        F.NODE_FEATURES: x,
        F.BATCH: torch.tensor([0, 0, 1, 1, 1]),
        F.CELL: torch.zeros(2, 3, 3),
    }
    out = block(state)["polarizability"]
    assert out.shape == (2, 11)
    per_atom = block.linear(x)
    expected = per_atom[:2].sum(0) if pool == "sum" else per_atom[:2].mean(0)
    assert torch.allclose(out[0], expected)
    for R in (haar_rotations(1)[0], -haar_rotations(1)[0]):
        moved = block({**state, F.NODE_FEATURES: x @ wigner_d(features, R).T})["polarizability"]
        assert torch.allclose(moved, out @ wigner_d(o3.Irreps("1x0e + 2x2e"), R).T, atol=1e-12)


def test_polarizability_blueprint_gives_a_symmetric_tensor_that_rotates():
    """Through the whole model: the 0e + 2e output is a symmetric Cartesian tensor T with
    T(Rx) = R T(x) R^T, for proper and improper R."""
    from ase.build import molecule

    model = geocompose.compile("blueprints/polarizability.yaml", dtype=torch.float64, seed=0)
    assert model.outputs["polarizability"].irreps == o3.Irreps("1x0e + 1x2e")
    atoms = molecule("CH3CH2OH")
    atoms.positions += (
        0.05 * torch.randn(len(atoms), 3, generator=torch.Generator().manual_seed(1)).numpy()
    )
    batch = geocompose.Batch.from_ase([atoms])
    cart = io.CartesianTensor("ij=ji")
    irreps_value = model(batch)["polarizability"].detach()
    T = cart.to_cartesian(irreps_value.to(torch.float32)).double()[0]  # (3, 3)
    assert torch.allclose(T, T.T, atol=1e-6) and T.abs().max() > 1e-4
    for R in (haar_rotations(1)[0], -haar_rotations(1)[0]):
        moved = model(batch.replace(positions=batch.positions @ R.T))["polarizability"].detach()
        assert torch.allclose(
            moved, irreps_value @ wigner_d(o3.Irreps("1x0e + 1x2e"), R).T, atol=1e-10
        )
        T_moved = cart.to_cartesian(moved.to(torch.float32)).double()[0]
        assert torch.allclose(T_moved, R @ T @ R.T, atol=1e-5)


def test_compile_refuses_a_readout_asking_for_missing_irreps():
    blueprint = {
        "name": "bad",
        "symmetry": {"group": "O(3)"},
        "graph": {"type": "radius", "cutoff": 4.0},
        "embedding": {
            "species": ["H", "C"],
            "node": {"type": "one_hot"},
            "radial": {"type": "bessel", "num": 4},
            "angular": {"l_max": 1},
        },
        "interactions": [
            {"type": "nequip", "features": "4x0e + 2x1o", "tensor_product": {"l_max": 1}}
        ],
        "readout": {"polarizability": {"type": "tensor", "irreps": "1x2e"}},
    }
    with pytest.raises(BlueprintError, match="2e"):
        geocompose.check(blueprint)
