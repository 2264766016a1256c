"""Peak memory is estimated before a call, and a batch that cannot fit is refused."""

from __future__ import annotations

from pathlib import Path

import ase.build
import pytest
import torch

import geocompose
from geocompose.errors import MemoryRefusal, StructureError
from geocompose.nn import memory

SCHNET = Path(__file__).parents[3] / "blueprints" / "schnet.yaml"


@pytest.fixture(scope="module")
def model():
    return geocompose.compile(SCHNET, dtype=torch.float32, seed=0).eval()


def copper(repeats):
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True) * repeats
    atoms.rattle(0.02, seed=0)
    return geocompose.Batch.from_ase(atoms, dtype=torch.float32)


def test_the_probe_is_a_small_cluster_of_the_batchs_atoms():
    batch = copper((2, 2, 2))  # 32 atoms: the probe takes periodic images too
    probe = memory.probe_batch(batch)
    assert probe.num_atoms == memory.PROBE_ATOMS
    assert not probe.pbc.any() and (probe.atomic_numbers == 29).all()


def test_the_estimate_grows_with_the_edges_from_one_profile(model):
    small, large = copper((2, 2, 2)), copper((3, 3, 3))
    peak_small, edges_small = memory.estimate_peak(model, small)
    peak_large, edges_large = memory.estimate_peak(model, large)
    assert len(model._memory_profiles) == 1  # measured once, kept on the model
    profile = next(iter(model._memory_profiles.values()))
    # SchNet keeps a few (E, 128) float32 tensors per layer for the forces' backward.
    assert 2_000 < profile.per_edge < 40_000
    assert edges_large > edges_small
    assert peak_large / peak_small == pytest.approx(
        profile.peak(large.num_atoms, edges_large) / profile.peak(small.num_atoms, edges_small)
    )


def test_a_batch_beyond_the_available_memory_is_refused_in_one_line(model, monkeypatch):
    monkeypatch.setattr(memory, "CHECK_ABOVE_EDGES", 0)
    monkeypatch.setattr(memory, "available_bytes", lambda: 10 * 2**20)  # 10 MiB left
    with pytest.raises(MemoryRefusal) as refusal:
        model(copper((3, 3, 3)))
    message = str(refusal.value)
    assert "\n" not in message and "108 atoms" in message and "GiB available" in message
    assert isinstance(refusal.value, StructureError)  # the CLI's bad-input exit (2)
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 2**30)
    assert torch.isfinite(model(copper((3, 3, 3)))["forces"]).all()


def test_available_memory_is_read_from_the_kernel():
    available = memory.available_bytes()
    assert available is None or available > 0
