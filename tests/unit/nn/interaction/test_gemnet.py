"""GemNet-T/Q: chirality is typed (signed torsions are SO(3) only), smooth torsion cutoff."""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import pytest
import torch
import yaml

import geocompose
from geocompose.cli.main import main
from geocompose.registry import REGISTRY, Group, Kind
from geocompose.verification import Verdict, verify

SPECIES = ["H", "C", "F", "Cl", "Br"]


def blueprint(block: str, group: str = "O(3)", repeat: int = 2, **params):
    return {
        "name": "q",
        "symmetry": {"group": group},
        "graph": {"type": "radius", "cutoff": 5.0},
        "embedding": {
            "species": SPECIES,
            "node": {"type": "learned", "features": 8},
            "radial": {"type": "bessel", "num": 6},
        },
        "interactions": [{"type": block, "hidden": 8, "int_emb": 4, "repeat": repeat, **params}],
        "readout": {"energy": {"type": "sum", "hidden": [8]}, "forces": {"type": "gradient"}},
    }


def bromochlorofluoromethane(mirror: bool = False) -> ase.Atoms:
    """CHFClBr: a stereocentre with four different substituents (bond lengths in Å)."""
    directions = np.array([[1, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]]) / np.sqrt(3)
    lengths = [1.09, 1.36, 1.76, 1.93]
    positions = np.vstack([[0.0, 0.0, 0.0], directions * np.array(lengths)[:, None]])
    if mirror:
        positions = positions * np.array([1.0, 1.0, -1.0])
    return ase.Atoms("CHFClBr", positions=positions)


def rotated(atoms: ase.Atoms, seed: int) -> ase.Atoms:
    q = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))[0]
    q = q * np.sign(np.linalg.det(q))  # proper rotation
    out = atoms.copy()
    out.positions = atoms.positions @ q.T + 1.7
    return out


def energies(model, structures) -> torch.Tensor:
    return model(geocompose.Batch.from_ase(structures))["energy"].detach().flatten()


def test_registry_types_the_torsion_sign():
    entries = {
        n: REGISTRY.get(Kind.INTERACTION, n) for n in ("gemnet_t", "gemnet_q", "gemnet_q_unsigned")
    }
    assert {n: (e.body_order, e.group) for n, e in entries.items()} == {
        "gemnet_t": (3, Group.O3),
        "gemnet_q": (4, Group.SO3),
        "gemnet_q_unsigned": (4, Group.O3),
    }
    assert geocompose.check(blueprint("gemnet_q", "SO(3)")).derived is Group.SO3
    assert geocompose.check(blueprint("gemnet_q_unsigned")).derived is Group.O3


@pytest.mark.parametrize("seed", [0, 1])
def test_signed_torsions_distinguish_mirror_images_but_not_rotations(seed):
    model = geocompose.compile(blueprint("gemnet_q", "SO(3)"), dtype=torch.float64, seed=seed)
    left, right = bromochlorofluoromethane(), bromochlorofluoromethane(mirror=True)
    e = energies(model, [left, right, rotated(left, seed), rotated(right, seed + 7)])
    scale = e.abs().max()
    assert (e[0] - e[1]).abs() > 1e-9 * scale  # measured ~5e-8 to 3e-7 at initialisation
    assert (e[0] - e[2]).abs() < 1e-13 * scale and (e[1] - e[3]).abs() < 1e-13 * scale


@pytest.mark.parametrize("block", ["gemnet_q_unsigned", "gemnet_t"])
def test_unsigned_torsions_and_triplets_are_blind_to_chirality(block):
    model = geocompose.compile(blueprint(block), dtype=torch.float64, seed=0)
    e = energies(model, [bromochlorofluoromethane(), bromochlorofluoromethane(mirror=True)])
    assert (e[0] - e[1]).abs() < 1e-13 * e.abs().max()


def test_quadruplet_term_itself_is_odd_or_even_under_reflection():
    outputs = {}
    for block in ("gemnet_q", "gemnet_q_unsigned"):
        model = geocompose.compile(blueprint(block, "SO(3)", repeat=1), dtype=torch.float64, seed=0)
        quad = next(b for b in model.blocks if hasattr(b, "quadruplet")).quadruplet
        seen = []
        forward = quad.forward
        quad.forward = lambda state, m, f=forward, seen=seen: seen.append(f(state, m)) or seen[-1]
        energies(model, [bromochlorofluoromethane()])
        energies(model, [bromochlorofluoromethane(mirror=True)])
        outputs[block] = (seen[0] - seen[1]).abs().max() / seen[0].abs().max()
    assert outputs["gemnet_q"] > 1e-2 and outputs["gemnet_q_unsigned"] < 1e-14


def test_verifier_refuses_an_o3_claim_for_signed_torsions_and_accepts_so3(tmp_path):
    # The same blueprint, claiming O(3): `geocompose verify` exits 1 (claim violated) ...
    claims_o3 = tmp_path / "q.yaml"
    claims_o3.write_text(yaml.safe_dump(blueprint("gemnet_q", "O(3)", repeat=1)))
    assert main(["verify", str(claims_o3), "--samples", "1", "--seed", "0"]) == 1
    # ... and claiming SO(3) it verifies, with the reflection error measured, not hidden.
    right = verify(blueprint("gemnet_q", "SO(3)", repeat=1), samples=1, seed=0)
    checks = {c.name: c for c in right.checks}
    assert right.passed and checks["rotation"].verdict is Verdict.PASS
    assert checks["reflection"].verdict is Verdict.MEASURED and checks["reflection"].error > 1e-6
    assert (
        "group: SO(3)" in (Path(__file__).parents[4] / "blueprints" / "gemnet_q.yaml").read_text()
    )


def test_energy_is_continuous_where_an_edge_crosses_the_torsion_cutoff():
    model = geocompose.compile(
        blueprint("gemnet_q", "SO(3)", torsion_cutoff=2.5), dtype=torch.float64, seed=0
    )
    base = bromochlorofluoromethane()
    chain = base.copy()
    # Move Br along its bond so that the Cl-Br distance (non-bonded) crosses 2.5 Å.
    d0 = base.get_distance(3, 4)
    structures = []
    for target in (2.5 - 1e-7, 2.5 + 1e-7):
        s = chain.copy()
        direction = (s.positions[4] - s.positions[3]) / d0
        s.positions[4] = s.positions[3] + direction * target
        structures.append(s)
    e = energies(model, structures)
    assert (e[0] - e[1]).abs() < 1e-5 * e.abs().max()
