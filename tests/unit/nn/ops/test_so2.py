"""The SO(2) edge product equals the Clebsch–Gordan one (float64, 1e-12), edges along the
poles included, and its relaxation breaks the symmetry in proportion to its coefficient."""

import math

import pytest
import torch
from e3nn import o3

from geocompose.nn.interaction.spherical import (
    ChannelwiseProduct,
    channel_major,
    component_major,
    exact_constants,
)
from geocompose.nn.ops.paths import enumerate_paths, merge_second_orders
from geocompose.nn.ops.so2 import SO2Product, edge_rotations, wigner_d_matrices
from geocompose.types.irreps import wigner_d
from geocompose.verification.groups import haar_rotation

POLES = [[0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [0.0, -2.5, 0.0], [1e-9, 1.0, -1e-9]]


def natural_irreps(l_max: int, mul: int = 3) -> o3.Irreps:
    """``mul x 0e + mul x 1o + ...`` plus a few of the other parity."""
    return o3.Irreps(
        [(mul, (l, (-1) ** l)) for l in range(l_max + 1)] + [(2, (1, 1)), (1, (0, -1))]
    )


def edges(count: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    random = torch.randn(count, 3, generator=gen, dtype=torch.float64)
    return torch.cat([random, torch.tensor(POLES, dtype=torch.float64)])


def merged_cg(plan, merged, x, sh, w):
    """The reference: the per-path Clebsch–Gordan product, paths of one merged segment summed."""
    with exact_constants():
        per_path = ChannelwiseProduct(plan)(x, sh, w)
    sizes = [p.mul_in1 * p.ir_out.dim for p in sorted(plan.paths, key=lambda p: p.i_out)]
    out = [torch.zeros(x.shape[0], mul * ir.dim, dtype=x.dtype) for mul, ir in merged.irreps_out]
    # Path i of the plan (in its output order) lands in the merged segment of its record.
    ordered = sorted(range(len(plan.paths)), key=lambda i: plan.paths[i].i_out)
    for i, seg in zip(ordered, per_path.split(sizes, -1)):
        target = merged.paths[i].i_out
        out[target] = out[target] + seg
    return torch.cat(out, -1)


def test_edge_rotations_take_every_edge_to_the_pole_smoothly():
    vectors = edges(50)
    rotations = edge_rotations(vectors)
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    pole = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand_as(unit)
    assert torch.allclose(torch.einsum("eij,ej->ei", rotations, unit), pole, atol=1e-14)
    eye = torch.eye(3, dtype=torch.float64).expand_as(rotations)
    assert torch.allclose(rotations @ rotations.transpose(1, 2), eye, atol=1e-14)
    assert torch.allclose(torch.det(rotations), torch.ones(len(vectors), dtype=torch.float64))


def test_wigner_d_matrices_are_e3nns():
    rotations = edge_rotations(edges(6))
    for l, d in enumerate(wigner_d_matrices(rotations, 5)):
        # The project's least-squares D (e3nn's Euler path loses 1e-7 near the poles).
        reference = torch.stack([wigner_d(o3.Irreps(f"1x{l}e"), r) for r in rotations])
        assert torch.allclose(d, reference, atol=1e-13)
        if l:  # and a representation, to rounding
            eye = torch.eye(2 * l + 1, dtype=torch.float64).expand_as(d)
            assert torch.allclose(d @ d.transpose(1, 2), eye, atol=1e-13)


def test_basis_conventions_the_so2_form_relies_on():
    """Y_l(e_y) lives at the middle component, and a turn about y rotates (l+m, l-m)."""
    t = 0.37
    turn = torch.tensor(
        [[math.cos(t), 0.0, math.sin(t)], [0.0, 1.0, 0.0], [-math.sin(t), 0.0, math.cos(t)]],
        dtype=torch.float64,
    )
    for l in range(1, 6):
        y = o3.spherical_harmonics(l, torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64), False)
        assert torch.allclose(
            y[0, torch.arange(2 * l + 1) != l], torch.zeros(2 * l, dtype=torch.float64), atol=1e-15
        )
        d = wigner_d_matrices(turn.unsqueeze(0), l)[l][0]
        for m in range(1, l + 1):
            c, s = math.cos(m * t), math.sin(m * t)
            block = d[[l + m, l - m]][:, [l + m, l - m]]
            assert torch.allclose(block, torch.tensor([[c, -s], [s, c]], dtype=torch.float64))


@pytest.mark.parametrize("l_max", [1, 2, 3, 4])
def test_so2_product_equals_the_clebsch_gordan_product(l_max):
    """Tied weights: the same per-path weights give the same messages, values and
    gradients (forces differentiate through the rotations), to 1e-12 in float64."""
    plan = enumerate_paths(natural_irreps(l_max), o3.Irreps.spherical_harmonics(l_max))
    merged = merge_second_orders(plan)
    so2 = SO2Product(merged)
    assert so2.weight_numel == plan.weight_numel
    vectors = edges(40, seed=l_max).requires_grad_(True)
    gen = torch.Generator().manual_seed(l_max)
    x = torch.randn(len(vectors), plan.irreps_in1.dim, generator=gen, dtype=torch.float64)
    x = component_major(x, plan.irreps_in1).requires_grad_(True)
    w = torch.randn(len(vectors), plan.weight_numel, generator=gen, dtype=torch.float64)
    w.requires_grad_(True)
    # Not unit length: the harmonics' radial factor must carry through (|r|^l).
    sh = o3.spherical_harmonics(list(range(l_max + 1)), vectors, normalize=False)
    wigner = wigner_d_matrices(edge_rotations(vectors), so2.l_max)
    out = so2(x, sh, w, wigner)
    reference = merged_cg(plan, merged, x, sh, w)
    scale = reference.abs().max()
    assert (out - reference).abs().max() <= 1e-12 * scale
    probe = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad((out * probe).sum(), (x, w, vectors), retain_graph=True)
    grads_ref = torch.autograd.grad((reference * probe).sum(), (x, w, vectors))
    for got, want in zip(grads, grads_ref):
        assert torch.isfinite(got).all()
        assert (got - want).abs().max() <= 1e-11 * want.abs().max()


def test_merged_plan_is_e3nns_sum_of_the_same_paths():
    """merge_second_orders only re-indexes outputs: e3nn builds the merged plan and
    sums the paths into shared segments (here with e3nn's own fan-in normalisation)."""
    plan = enumerate_paths(natural_irreps(2), o3.Irreps.spherical_harmonics(2))
    merged = merge_second_orders(plan)
    assert len(merged.paths) == len(plan.paths)
    assert len(merged.irreps_out) < len(plan.irreps_out)
    assert merged.tensor_product().irreps_out == merged.irreps_out
    pairs = {(p.i_in1, p.ir_out) for p in plan.paths}
    assert len(pairs) == len(merged.irreps_out)


def relaxed_error(eps: float, seed: int = 0) -> float:
    """Relative equivariance error of the relaxed product under a random rotation."""
    plan = merge_second_orders(enumerate_paths(natural_irreps(2), o3.Irreps.spherical_harmonics(2)))
    so2 = SO2Product(plan, relaxation=eps)
    gen = torch.Generator().manual_seed(seed)
    vectors = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    x = torch.randn(20, plan.irreps_in1.dim, generator=gen, dtype=torch.float64)
    w = torch.randn(20, so2.weight_numel, generator=gen, dtype=torch.float64)
    rotation = haar_rotation(gen)

    def run(v, features):
        sh = o3.spherical_harmonics(list(range(3)), v, normalize=True)
        wigner = wigner_d_matrices(edge_rotations(v), so2.l_max)
        return so2(component_major(features, plan.irreps_in1), sh, w, wigner)

    d_in, d_out = wigner_d(plan.irreps_in1, rotation), wigner_d(plan.irreps_out, rotation)
    turned = channel_major(run(vectors @ rotation.T, x @ d_in.T), plan.irreps_out)
    expected = channel_major(run(vectors, x), plan.irreps_out) @ d_out.T
    return float((turned - expected).abs().max() / expected.abs().max())


def test_relaxation_zero_is_exact_and_above_zero_breaks_in_proportion():
    plan = enumerate_paths(natural_irreps(2), o3.Irreps.spherical_harmonics(2))
    # No relaxation weights exist at 0; above it, two per channel and block m >= 1.
    assert SO2Product(merge_second_orders(plan), 0.0).weight_numel == plan.weight_numel
    assert SO2Product(merge_second_orders(plan), 0.1).weight_numel > plan.weight_numel
    assert relaxed_error(0.0) < 1e-12
    small, large = relaxed_error(1e-3), relaxed_error(1e-1)
    assert small > 1e-6  # really broken
    assert 50 < large / small < 200  # first order in eps


@pytest.mark.parametrize(
    ("tensor_product", "said"),
    [
        ({"implementation": "so2", "mode": "uvw"}, "so2 computes uvu products only"),
        ({"relaxation": 0.1}, "set implementation: so2"),
        ({"implementation": "so2", "relaxation": -1.0}, "relaxation"),
    ],
)
def test_a_misused_so2_knob_is_one_located_line(tensor_product, said):
    import geocompose
    from geocompose.errors import BlueprintError

    blueprint = {
        "name": "bad",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": {"type": "radius", "cutoff": 4.0},
        "embedding": {
            "species": ["H"],
            "node": {"type": "one_hot"},
            "radial": {"type": "bessel", "num": 4},
            "angular": {"l_max": 1},
        },
        "interactions": [
            {"type": "nequip", "features": "4x0e + 2x1o", "tensor_product": tensor_product}
        ],
        "readout": {"energy": {"type": "sum"}},
    }
    with pytest.raises(BlueprintError) as caught:
        geocompose.check(blueprint)
    message = str(caught.value)
    assert said in message and "interactions[0].tensor_product" in message
    assert "Traceback" not in message


def test_no_edges_give_no_messages():
    """An isolated atom or an empty batch has no edges: shapes stay defined."""
    plan = merge_second_orders(enumerate_paths(natural_irreps(2), o3.Irreps.spherical_harmonics(2)))
    so2 = SO2Product(plan, relaxation=0.1)
    vectors = torch.zeros(0, 3, dtype=torch.float64)
    x = torch.zeros(0, plan.irreps_in1.dim, dtype=torch.float64)
    sh = torch.zeros(0, plan.irreps_in2.dim, dtype=torch.float64)
    w = torch.zeros(0, so2.weight_numel, dtype=torch.float64)
    out = so2(x, sh, w, wigner_d_matrices(edge_rotations(vectors), so2.l_max))
    assert out.shape == (0, plan.irreps_out.dim)
