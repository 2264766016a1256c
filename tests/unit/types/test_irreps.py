import pytest
import torch
from e3nn import o3

from geocompose.types.irreps import FieldType, Level, is_subset, parse_irreps, scalar_part, wigner_d
from geocompose.verification.groups import haar_rotation


def test_parse_makes_parity_explicit_and_counts_are_scalars():
    assert str(parse_irreps("2x1y")) == "2x1o"
    assert str(parse_irreps(16)) == "16x0e"
    with pytest.raises(ValueError, match="not valid irreps"):
        parse_irreps("3xq")
    with pytest.raises(ValueError):
        parse_irreps(0)


def test_cartesian_vectors_are_1o_without_reordering():
    r = haar_rotation(torch.Generator().manual_seed(0))
    assert torch.allclose(wigner_d(o3.Irreps("1o"), r), r, atol=1e-14)
    assert torch.allclose(wigner_d(o3.Irreps("1o"), -r), -r, atol=1e-14)
    assert torch.allclose(wigner_d(o3.Irreps("1e"), -r), r, atol=1e-14)


@pytest.mark.parametrize("l", [1, 2, 3, 4])
def test_wigner_d_is_a_representation_to_machine_precision(l):
    gen = torch.Generator().manual_seed(l)
    a, b = haar_rotation(gen), haar_rotation(gen)
    irreps = o3.Irreps(f"{l}e")
    assert torch.allclose(
        wigner_d(irreps, a @ b), wigner_d(irreps, a) @ wigner_d(irreps, b), atol=1e-12
    )
    x = torch.randn(7, 3, dtype=torch.float64, generator=gen)
    y = o3.spherical_harmonics(l, x, normalize=True)
    assert torch.allclose(
        o3.spherical_harmonics(l, x @ a.T, normalize=True), y @ wigner_d(irreps, a).T, atol=1e-12
    )


def test_scalar_part_and_subset():
    irreps = o3.Irreps("4x0e + 2x0o + 3x1o")
    assert str(scalar_part(irreps)) == "4x0e"
    assert is_subset(o3.Irreps("2x0e + 1x1o"), irreps)
    assert not is_subset(o3.Irreps("1x2e"), irreps)
    assert FieldType(irreps, Level.NODE).is_scalar is False
