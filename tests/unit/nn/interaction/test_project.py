"""The scalars projection, and where types meet: PaiNN -> SchNet is refused with a
located error, PaiNN -> scalars -> SchNet type-checks and runs."""

from __future__ import annotations

import textwrap

import pytest
import torch
from cartesian_cases import assert_block_equivariant, ctx, positions, state_for, upstream
from e3nn import o3

import geocompose
from geocompose.errors import BlueprintError
from geocompose.nn.interaction.project import ScalarProjection, ScalarsParams
from geocompose.types import TypeRefusal
from geocompose.types import fields as F

YAML = textwrap.dedent(
    """\
    name: mixed
    symmetry: {group: O(3), strategy: built_in}
    graph: {type: radius, cutoff: 5.0}
    embedding:
      species: [H, C, N, O, Cu]
      node: {type: learned, features: 8}
      radial: {type: bessel, num: 6}
      envelope: {type: cosine}
    interactions:
      - {type: painn, repeat: 2}
    {middle}  - {type: schnet, filters: 8}
    readout:
      energy: {type: sum, hidden: [8]}
      forces: {type: gradient, of: energy}
    """
)


def blueprint_dict(*interactions) -> dict:
    return {
        "name": "mixed",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": {"type": "radius", "cutoff": 5.0},
        "embedding": {
            "species": ["H", "C", "N", "O", "Cu"],
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "bessel", "num": 6},
            "envelope": {"type": "cosine"},
        },
        "interactions": list(interactions),
        "readout": {"energy": {"type": "sum", "hidden": [8]}},
    }


def test_painn_into_schnet_is_refused_at_its_line(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(YAML.replace("{middle}", ""))
    with pytest.raises(BlueprintError) as err:
        geocompose.compile(path)
    e = err.value
    assert e.knob == "interactions[1]"
    assert e.location is not None and e.location.file == str(path) and e.location.line == 11
    text = str(e)
    assert text.startswith(f"{path}:11:")
    assert "schnet reads node_features as 0e only; upstream gives 8x0e+8x1o" in text
    # and nothing was checked only by luck: the same error without a file has no location
    with pytest.raises(BlueprintError) as err:
        geocompose.compile(blueprint_dict({"type": "painn"}, {"type": "schnet"}))
    assert err.value.knob == "interactions[1]" and err.value.location is None
    assert "0e only" in err.value.message


def test_painn_then_scalars_then_schnet_type_checks_and_runs(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text(YAML.replace("{middle}", "  - {type: scalars}\n"))
    model = geocompose.compile(path, dtype=torch.float64, seed=0)
    rows = {row.knob: row for row in model.trace.rows}
    assert rows["interactions[0]#2"].writes[F.NODE_FEATURES].irreps == o3.Irreps("8x0e + 8x1o")
    assert rows["interactions[1]"].writes[F.NODE_FEATURES].irreps == o3.Irreps("8x0e")
    assert rows["interactions[2]"].label == "schnet"
    assert model.derived_symmetry.value == "O(3)"
    import ase

    out = model(
        geocompose.Batch.from_ase(
            ase.Atoms("CHHO", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.2]])
        )
    )
    assert torch.isfinite(out["energy"]).all() and out["forces"].shape == (4, 3)


def test_dict_blueprint_with_projection_compiles():
    spec = blueprint_dict(
        {"type": "gvp", "vectors": 3}, {"type": "scalars"}, {"type": "egnn", "hidden": 4}
    )
    geocompose.check(spec)
    with pytest.raises(BlueprintError, match=r"egnn reads node_features as 0e only") as err:
        geocompose.check(blueprint_dict({"type": "gvp", "vectors": 3}, {"type": "egnn"}))
    assert err.value.knob == "interactions[1]"


@pytest.mark.parametrize(
    ("irreps", "kept"),
    [
        ("3x0e + 2x1o", "3x0e"),
        ("1x1o + 2x0e + 1x2e + 1x0e", "3x0e"),
        ("4x0e", "4x0e"),
        ("2x0o + 1x0e + 1x1e", "1x0e"),
    ],
)
def test_keeps_exactly_the_0e_channels(irreps, kept):
    block = ScalarProjection(ScalarsParams(), upstream(irreps), ctx())
    assert block.irreps_out[F.NODE_FEATURES] == o3.Irreps(kept)
    irreps = o3.Irreps(irreps)
    x = torch.arange(irreps.dim, dtype=torch.float64).unsqueeze(0)
    expected = torch.cat(
        [x[:, sl] for sl, (_, ir) in zip(irreps.slices(), irreps) if ir == o3.Irrep("0e")], -1
    )
    assert torch.equal(block({F.NODE_FEATURES: x})[F.NODE_FEATURES], expected)


def test_refuses_features_without_scalars():
    refusal = ScalarProjection.signature(ScalarsParams(), upstream("4x1o"), ctx())
    assert isinstance(refusal, TypeRefusal) and "none" in refusal.message


def test_invariant_output():
    types = upstream("3x0e + 2x1o")
    block = ScalarProjection(ScalarsParams(), types, ctx()).double()
    assert_block_equivariant(block, state_for(positions(0), types), types)
