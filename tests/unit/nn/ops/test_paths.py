"""Tensor-product path enumeration: selection rules, filters, explicit lists, refusals."""

from __future__ import annotations

import pydantic
import pytest
import torch
from e3nn import o3

from geocompose.data.rotations import haar_rotations
from geocompose.nn.ops.paths import (
    MixingMode,
    PathPlan,
    PathSpec,
    TensorProductParams,
    allowed,
    enumerate_paths,
)
from geocompose.types import TypeRefusal
from geocompose.types.irreps import wigner_d

NODE = o3.Irreps("4x0e + 2x0o + 3x1o + 2x1e + 2x2e")
SH = o3.Irreps.spherical_harmonics(2)


def triples(plan: PathPlan) -> set[tuple[str, str, str]]:
    return {(str(p.ir_in1), str(p.ir_in2), str(p.ir_out)) for p in plan.paths}


def brute_force(irreps1, irreps2, max_l=None) -> set[tuple[str, str, str]]:
    """Every (ir1, ir2, ir3) with l3 <= 8, both parities, filtered by the rules alone."""
    out = set()
    for _, ir1 in irreps1:
        for _, ir2 in irreps2:
            for l3 in range(9):
                for p3 in (1, -1):
                    ir3 = o3.Irrep(l3, p3)
                    if allowed(ir1, ir2, ir3) and (max_l is None or l3 <= max_l):
                        out.add((str(ir1), str(ir2), str(ir3)))
    return out


def test_all_paths_are_exactly_those_the_selection_rules_allow():
    plan = enumerate_paths(NODE, SH)
    assert triples(plan) == brute_force(NODE, SH)
    for p in plan.paths:
        assert abs(p.ir_in1.l - p.ir_in2.l) <= p.ir_out.l <= p.ir_in1.l + p.ir_in2.l
        assert p.ir_in1.p * p.ir_in2.p == p.ir_out.p


def test_max_l_out_drops_higher_outputs():
    plan = enumerate_paths(NODE, SH, max_l_out=1)
    assert triples(plan) == brute_force(NODE, SH, max_l=1)
    assert plan.irreps_out.lmax == 1


def test_irreps_out_filters_uvu_outputs_and_sets_uvw_outputs():
    target = o3.Irreps("3x0e + 5x1e")
    uvu = enumerate_paths(NODE, SH, irreps_out=target)
    assert {p.ir_out for p in uvu.paths} == {o3.Irrep("0e"), o3.Irrep("1e")}
    assert all(p.mul_out == p.mul_in1 for p in uvu.paths)  # uvu keeps channel u
    uvw = enumerate_paths(NODE, SH, irreps_out=target, mode="uvw")
    assert uvw.irreps_out == target and uvw.mode is MixingMode.UVW
    assert uvw.weight_numel == sum(p.mul_in1 * p.mul_in2 * p.mul_out for p in uvw.paths)


def test_uvu_output_has_one_sorted_segment_per_path():
    plan = enumerate_paths(NODE, SH)
    assert len(plan.irreps_out) == len(plan.paths)
    assert [ir for _, ir in plan.irreps_out] == sorted(ir for _, ir in plan.irreps_out)
    assert plan.weight_numel == sum(p.mul_in1 for p in plan.paths)  # harmonics have mul 1


def test_explicit_strings_and_orders():
    plan = enumerate_paths(NODE, SH, paths=["1o x 1o -> 1e", [0, 2, 2]])
    # [0, 2, 2] fixes only l: it matches 0e x 2e -> 2e and 0o x 2e -> 2o.
    assert triples(plan) == {("1o", "1o", "1e"), ("0e", "2e", "2e"), ("0o", "2e", "2o")}


def test_requested_path_without_input_segment_is_skipped_and_reported():
    plan = enumerate_paths(o3.Irreps("4x0e"), SH, paths=["0e x 1o -> 1o", "1o x 1o -> 1e"])
    assert triples(plan) == {("0e", "1o", "1o")}
    assert plan.skipped == ("1o x 1o -> 1e",)
    assert any("not instantiated" in line for line in plan.describe())


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("1o x 1o -> 1o", ["1o x 1o -> 1o", "parity", "1e"]),
        ("1o x 1o -> 3e", ["1o x 1o -> 3e", "triangle"]),
        ([2, 0, 1], ["[2, 0, 1]", "triangle"]),
        ("2e x 2e -> 0o", ["2e x 2e -> 0o", "parity"]),
    ],
)
def test_a_path_breaking_a_selection_rule_is_refused_by_name(path, words):
    refusal = enumerate_paths(NODE, SH, paths=["0e x 0e -> 0e", path])
    assert isinstance(refusal, TypeRefusal)
    for word in words:
        assert word in refusal.message


def test_a_path_needing_odd_harmonics_is_refused():
    refusal = enumerate_paths(
        NODE, SH, paths=["1o x 1e -> 0o"], names=("node_features", "edge_angular")
    )
    assert isinstance(refusal, TypeRefusal)
    assert "1o x 1e -> 0o" in refusal.message and "edge_angular" in refusal.message


def test_a_path_into_an_excluded_output_is_refused():
    refusal = enumerate_paths(NODE, SH, irreps_out=o3.Irreps("4x0e"), paths=["1o x 1o -> 1e"])
    assert isinstance(refusal, TypeRefusal) and "1o x 1o -> 1e" in refusal.message


def test_no_surviving_path_is_refused():
    refusal = enumerate_paths(o3.Irreps("4x0e"), SH, irreps_out=o3.Irreps("2x1e"))
    assert isinstance(refusal, TypeRefusal) and "no tensor-product path" in refusal.message


def test_instructions_build_an_e3nn_product_with_the_same_weight_count():
    for mode in ("uvu", "uvw"):
        plan = enumerate_paths(NODE, SH, irreps_out=o3.Irreps("2x0e + 2x1o + 2x1e"), mode=mode)
        tp = plan.tensor_product()
        assert tp.weight_numel == plan.weight_numel
        assert len(tp.instructions) == len(plan.paths)
        assert tp.irreps_out == plan.irreps_out


def test_pseudovector_path_flips_correctly_under_reflection():
    """The cross-product path 1o x 1o -> 1e is invariant under -1 (two sign flips)."""
    torch.manual_seed(0)
    plan = enumerate_paths(o3.Irreps("3x1o"), o3.Irreps("1x1o"), paths=["1o x 1o -> 1e"])
    tp = plan.tensor_product(shared_weights=True).double()
    x, y = torch.randn(5, 9, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    R = -haar_rotations(1)[0]
    out = tp(x, y)
    moved = tp(x @ wigner_d(plan.irreps_in1, R).T, y @ R.T)
    assert torch.allclose(moved, out @ wigner_d(plan.irreps_out, R).T, atol=1e-12)
    assert torch.allclose(
        wigner_d(plan.irreps_out, R), wigner_d(plan.irreps_out, -R)
    )  # 1e: parity-even


def test_path_spec_parsing_and_printing():
    spec = PathSpec.parse(" 1o x 1o->1e ")
    assert (spec.l1, spec.l2, spec.l3, spec.p3) == (1, 1, 1, 1)
    assert str(spec) == "1o x 1o -> 1e"
    assert PathSpec.parse([1, 2, 3]) == PathSpec(1, 2, 3)
    with pytest.raises(ValueError, match="1o x 1o -> 1e"):
        PathSpec.parse("1o * 1o = 1e")


def test_params_model_validates_and_round_trips():
    params = TensorProductParams(
        l_max=2, paths=["0e x 1o -> 1o", [1, 1, 0]], max_l_out=2, mode="uvw"
    )
    assert params.mode is MixingMode.UVW
    dumped = params.model_dump(mode="json")
    assert dumped["paths"] == ["0e x 1o -> 1o", [1, 1, 0]]
    assert TensorProductParams(**dumped) == params
    assert TensorProductParams().paths == "all"
    with pytest.raises(pydantic.ValidationError):
        TensorProductParams(paths=["1o x 1o => 1e"])
    with pytest.raises(pydantic.ValidationError):
        TensorProductParams(mode="uuu")
    with pytest.raises(pydantic.ValidationError):
        TensorProductParams(paths=[])


def test_uuu_plan_has_no_weights_keeps_input_order_and_matches_e3nn():
    """MACE's contraction products: one weightless segment per coupling, in input order,
    pruned by the caller's rule; numerically the uuu product e3nn builds by hand."""
    a = o3.Irreps("3x0e + 3x1o + 3x2e")
    keep = lambda i1, i2, ir3: i1 <= i2 and ir3.l <= 2  # noqa: E731
    plan = enumerate_paths(a, a, mode=MixingMode.UUU, keep=keep)
    assert plan.weight_numel == 0 and all(not p.has_weight for p in plan.paths)
    couplings = [(p.i_in1, p.i_in2) for p in plan.paths]
    assert couplings == sorted(couplings) and all(i1 <= i2 for i1, i2 in couplings)
    assert [p.i_out for p in plan.paths] == list(range(len(plan.paths)))
    assert plan.irreps_out == o3.Irreps([(3, p.ir_out) for p in plan.paths])
    expected = [
        (i1, i2, ir3)
        for i1, (_, ir1) in enumerate(a)
        for i2, (_, ir2) in enumerate(a)
        for ir3 in ir1 * ir2
        if keep(i1, i2, ir3)
    ]
    assert [(p.i_in1, p.i_in2, p.ir_out) for p in plan.paths] == expected
    ours = plan.tensor_product(shared_weights=True).double()
    theirs = o3.TensorProduct(
        a, a, plan.irreps_out, [(i1, i2, i, "uuu", False) for i, (i1, i2, _) in enumerate(expected)]
    ).double()
    x = torch.randn(5, a.dim, dtype=torch.float64)
    assert list(ours.parameters()) == [] and torch.equal(ours(x, x), theirs(x, x))
    with pytest.raises(ValueError, match="equal multiplicities"):
        enumerate_paths(a, o3.Irreps("2x0e"), mode=MixingMode.UUU)


def test_uuu_is_no_knob_value():
    with pytest.raises(pydantic.ValidationError, match="uuu has no weights"):
        TensorProductParams(mode="uuu")
    assert TensorProductParams.model_json_schema()["properties"]["mode"]["enum"] == ["uvu", "uvw"]
