"""Registry: one name per knob, refusals at import, user blocks compile like built-ins."""

from typing import Literal

import pytest
import torch

import geocompose
from geocompose.nn.embedding.base import RadialBasis
from geocompose.registry import REGISTRY, Kind, KnobModel, RegistryError, register
from geocompose.registry.core import Registry
from geocompose.types import fields as F


def test_every_kind_has_entries_and_sources():
    for kind in Kind:
        entries = list(REGISTRY.entries(kind))
        assert entries, kind
        for e in entries:
            assert e.params.model_fields["type"].default == e.name
            assert ":" in e.source and e.doc


def test_duplicate_name_is_refused_with_a_versioning_hint():
    registry = Registry()

    class P(KnobModel):
        type: Literal["thing"] = "thing"

    class A(RadialBasis):
        Params = P

    class B(RadialBasis):
        Params = P

    register(Kind.RADIAL, registry=registry)(A)
    with pytest.raises(RegistryError, match=r"thing.v2"):
        register(Kind.RADIAL, registry=registry)(B)


def test_params_without_literal_type_is_refused():
    class P(KnobModel):
        type: str = "x"

    class A:
        Params = P

    with pytest.raises(RegistryError, match="Literal"):
        register(Kind.RADIAL, registry=Registry())(A)


def test_unknown_name_lists_choices_and_suggests():
    with pytest.raises(KeyError, match="did you mean 'schnet'"):
        REGISTRY.get(Kind.INTERACTION, "shnet")


def test_user_radial_basis_is_a_valid_yaml_type_and_compiles():
    class LinearRadialParams(KnobModel):
        type: Literal["linear_test"] = "linear_test"
        num: int = 3

    class LinearRadial(RadialBasis):
        """r, r^2, ... (a user's basis)."""

        Params = LinearRadialParams

        def of_lengths(self, lengths):
            return torch.cat([lengths**k for k in range(1, self.params.num + 1)], dim=1)

    register(Kind.RADIAL)(LinearRadial)
    try:
        bp = {
            "name": "user",
            "symmetry": {"group": "O(3)"},
            "graph": {"type": "radius", "cutoff": 3.0},
            "embedding": {
                "species": ["H"],
                "node": {"type": "one_hot"},
                "radial": {"type": "linear_test"},
            },
            "interactions": [{"type": "schnet", "filters": 4}],
            "readout": {"energy": {"type": "sum"}},
        }
        model = geocompose.compile(bp)
        assert model.blocks[2].radial.irreps_out[F.EDGE_RADIAL].dim == 3
        from geocompose.blueprint import json_schema

        assert "linear_test" in str(json_schema())
    finally:
        REGISTRY.remove(Kind.RADIAL, "linear_test")
