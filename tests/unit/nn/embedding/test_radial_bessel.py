"""The Bessel radial basis: DimeNet's normalised form and PaiNN's unnormalised one."""

import math

import torch

import geocompose


def _basis(normalised: bool):
    blueprint = {
        "name": "bessel-basis",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": {"type": "radius", "cutoff": 5.0},
        "embedding": {
            "species": ["H"],
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "bessel", "num": 4, "normalised": normalised},
            "envelope": {"type": "cosine"},
        },
        "interactions": [{"type": "painn"}],
        "readout": {"energy": {"type": "sum"}},
    }
    model = geocompose.compile(blueprint, dtype=torch.float64)
    (radial,) = [m for m in model.modules() if type(m).__name__ == "BesselRadial"]
    return radial


def test_unnormalised_basis_is_sin_over_r():
    lengths = torch.tensor([0.0, 0.7, 2.5, 4.9], dtype=torch.float64)
    n = torch.arange(1, 5, dtype=torch.float64)
    plain = _basis(normalised=False).of_lengths(lengths[1:, None])
    expected = torch.sin(n * math.pi * lengths[1:, None] / 5.0) / lengths[1:, None]
    torch.testing.assert_close(plain, expected, rtol=1e-12, atol=0)
    # the finite limit at r = 0: n pi / c
    torch.testing.assert_close(_basis(False).of_lengths(lengths[:1, None])[0], n * math.pi / 5.0)


def test_normalised_basis_carries_sqrt_two_over_c():
    lengths = torch.linspace(0.1, 4.9, 7, dtype=torch.float64)[:, None]
    ratio = _basis(True).of_lengths(lengths) / _basis(False).of_lengths(lengths)
    torch.testing.assert_close(ratio, torch.full_like(ratio, math.sqrt(2.0 / 5.0)), rtol=1e-12, atol=0)
