"""Per-layer energy readouts (MACE's ``E_i = sum_t R_t(h_i^(t))``): the layers'
``layer_readout`` terms reach the energy exactly once, through the pooling readout that
asks for them with ``layer_energy: true``, whatever that readout is named."""

from __future__ import annotations

import pytest
import torch
from ase.build import bulk

import geocompose
from geocompose.errors import BlueprintError
from geocompose.types import fields as F


def small_mace(layer_readout: bool = True, layer_energy: bool = True, name: str = "energy"):
    readout = {name: {"type": "sum", "hidden": [4], "layer_energy": layer_energy}}
    if name != "energy":  # E0s on top, as a fine-tuned potential has them
        readout["energy"] = {"type": "reference_energies", "add_to": name, "values": {"Cu": -3.0}}
    return {
        "name": "small-mace",
        "symmetry": {"group": "O(3)", "strategy": "built_in"},
        "graph": {"type": "radius", "cutoff": 4.0},
        "embedding": {
            "species": ["Cu"],
            "node": {"type": "learned", "features": 4},
            "radial": {"type": "bessel", "num": 4},
            "envelope": {"type": "polynomial", "p": 5},
            "angular": {"l_max": 2},
        },
        "interactions": [
            {
                "type": "mace",
                "features": "4x0e + 4x1o",
                "correlation": 2,
                "radial_hidden": [8],
                "layer_readout": layer_readout,
                "repeat": 2,
            }
        ],
        "readout": readout,
    }


def cell():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.1, seed=0)
    return geocompose.Batch.from_ase(atoms)


@pytest.mark.parametrize("name", ["energy", "network_energy"])
def test_the_layers_terms_reach_the_energy_once(name):
    model = geocompose.compile(small_mace(name=name), dtype=torch.float64, seed=0).eval()
    terms = {}
    last = [b for b in model.blocks if hasattr(b, "energy_term")][-1]
    last.register_forward_hook(lambda m, i, out: terms.update(out))
    batch = cell()
    energy = model(batch)["energy"].reshape(())
    layer_sum = terms[F.LAYER_ENERGY].sum()
    assert abs(float(layer_sum.detach())) > 1e-6  # the terms are there to be counted
    with torch.no_grad():
        for block in model.blocks:
            if getattr(block, "energy_term", None) is not None:
                for p in block.energy_term.parameters():
                    p.zero_()
    without = model(batch)["energy"].reshape(())
    torch.testing.assert_close(energy - without, layer_sum, rtol=1e-12, atol=1e-12)


def test_a_readout_asking_for_layer_terms_no_layer_writes_is_refused_with_the_fix():
    with pytest.raises(BlueprintError, match="layer_energy") as refused:
        geocompose.check(small_mace(layer_readout=False))
    assert "layer_readout: true" in str(refused.value)


def test_layer_terms_no_readout_asks_for_stay_out_of_the_energy():
    """Written but not read: the energy is the head's alone (the terms' weights get no
    gradient), as with layer_readout off."""
    model = geocompose.compile(small_mace(layer_energy=False), dtype=torch.float64, seed=0)
    model(cell())["energy"].sum().backward()
    taps = [
        p
        for b in model.blocks
        if getattr(b, "energy_term", None)
        for p in b.energy_term.parameters()
    ]
    assert taps and all(p.grad is None for p in taps)
