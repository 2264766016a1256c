"""Peak memory is estimated before a call, and a batch that cannot fit is refused."""

from __future__ import annotations

from pathlib import Path

import ase.build
import pytest
import torch

import geocompose
from geocompose.errors import MemoryRefusal, StructureError
from geocompose.nn import memory
from geocompose.nn.ops.message import EDGE_CHUNK
from geocompose.types import fields as F

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


def test_the_probe_of_an_open_structure_has_no_coincident_atoms():
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True) * (4, 4, 4)
    atoms.pbc = False  # a 256-atom cluster: no images
    probe = memory.probe_batch(geocompose.Batch.from_ase(atoms))
    assert probe.num_atoms == memory.PROBE_ATOMS
    assert len(torch.unique(probe.positions, dim=0)) == memory.PROBE_ATOMS


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
    monkeypatch.setattr(memory, "KEEP_FREED_ABOVE_EDGES", 0)
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


def test_the_checkpointed_estimate_is_well_below_the_plain_one_for_six_layers(model):
    batch = copper((3, 3, 3))
    plain, _ = memory.estimate_peak(model, batch)
    checkpointed, _ = memory.estimate_peak(model, batch, checkpointed=True)
    # SchNet keeps one layer's activations of six, and their gradients (measured 0.43).
    assert 0.2 * plain < checkpointed < 0.6 * plain


@pytest.mark.parametrize("name", ["schnet", "painn", "mace"])
def test_the_checkpointed_estimate_bounds_the_live_peak_of_a_larger_batch(name):
    """The estimate, scaled from its 128-atom probe to 256 atoms, against the tensor
    bytes alive at the highest point of that call: at least those (the resident peak is
    1.02-1.2x them at 2,048-8,788 atoms), and not far above (one shared factor over
    saved bytes had MACE at 2.5x)."""
    model = geocompose.compile(SCHNET.with_name(f"{name}.yaml"), dtype=torch.float32, seed=0)
    model = model.eval()
    batch = copper((4, 4, 4))
    estimate, edges = memory.estimate_peak(model, batch, checkpointed=True)
    probe = memory.probe_batch(batch, memory.CHECKPOINTED_PROBE_ATOMS)
    probe_edges = model.graph.topology(probe)[F.EDGE_INDEX].shape[1]
    assert probe_edges > EDGE_CHUNK  # a chunk's buffers are fixed bytes, not per edge
    assert edges > 3 * probe_edges
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    tracker = memory.LivePeak(batch.num_atoms, edges, weights)
    model.checkpointing = "always"
    with tracker:
        model(batch)
    assert sum(tracker.peak) <= estimate <= 1.5 * sum(tracker.peak)


def between_the_estimates(model, batch):
    """Available bytes that fit the checkpointed estimate but not the plain one."""
    plain, _ = memory.estimate_peak(model, batch)
    checkpointed, _ = memory.estimate_peak(model, batch, checkpointed=True)
    assert checkpointed < plain
    return lambda: int((plain + checkpointed) / 2)


def test_auto_checkpoints_a_batch_that_fits_only_checkpointed(model, monkeypatch):
    batch = copper((3, 3, 3))
    monkeypatch.setattr(memory, "CHECK_ABOVE_EDGES", 0)
    monkeypatch.setattr(memory, "KEEP_FREED_ABOVE_EDGES", 0)
    monkeypatch.setattr(memory, "available_bytes", between_the_estimates(model, batch))
    model.checkpointing = "auto"
    assert memory.check_memory(model, batch) is True
    model.checkpointing = "never"
    with pytest.raises(MemoryRefusal, match="checkpointing = 'auto'") as refusal:
        model(batch)
    assert "\n" not in str(refusal.value)
    model.checkpointing = "auto"
    assert torch.isfinite(model(batch)["forces"]).all()
    # A batch that fits plainly runs plainly (checkpointing costs time).
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 2**30)
    assert memory.check_memory(model, batch) is False


def test_a_batch_too_large_either_way_is_refused_with_the_smaller_estimate(model, monkeypatch):
    batch = copper((3, 3, 3))
    monkeypatch.setattr(memory, "CHECK_ABOVE_EDGES", 0)
    monkeypatch.setattr(memory, "KEEP_FREED_ABOVE_EDGES", 0)
    monkeypatch.setattr(memory, "available_bytes", lambda: 1024)
    checkpointed, _ = memory.estimate_peak(model, batch, checkpointed=True)
    for mode in ("auto", "always"):
        model.checkpointing = mode
        with pytest.raises(MemoryRefusal, match=f"{checkpointed / 2**30:.1f} GiB"):
            model(batch)
    model.checkpointing = "auto"


def test_freed_memory_is_reused_without_new_page_faults():
    import resource

    if not memory.keep_freed_memory():
        pytest.skip("not glibc: the C library's malloc cannot be told to keep memory")
    pages = 256 * 2**20 // 4096  # a 256 MiB tensor, far above glibc's mmap threshold
    for _ in range(2):
        # Allocated, touched, freed; twice, because an aligned block freed once is a
        # little short for the next aligned request of its size, two freed blocks merge.
        torch.ones(pages * 1024).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(pages * 1024).sum()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < pages // 10, f"{faults} page faults for a block malloc should have kept"
    # What malloc keeps free counts as available to the memory check.
    assert memory.available_bytes() >= memory._glibc().mallinfo2().fordblks >= 4 * pages * 1024 // 2
    # Switched back (and the free blocks handed back), a large block is mapped afresh
    # each time and faults page by page again.
    assert memory.keep_freed_memory(False) is False
    memory._glibc().malloc_trim(0)
    torch.ones(pages * 1024).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(pages * 1024).sum()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before > pages // 2


def test_memory_is_kept_only_for_a_call_with_room_for_the_fragmented_heap(model, monkeypatch):
    batch = copper((3, 3, 3))
    monkeypatch.setattr(memory, "CHECK_ABOVE_EDGES", 0)
    monkeypatch.setattr(memory, "KEEP_FREED_ABOVE_EDGES", 0)
    plain, _ = memory.estimate_peak(model, batch)
    model.checkpointing = "never"
    monkeypatch.setattr(memory, "available_bytes", lambda: int(1.1 * plain))  # fits, barely
    assert memory.check_memory(model, batch) is False and not memory._kept
    monkeypatch.setattr(memory, "available_bytes", lambda: int(3 * plain))
    assert memory.check_memory(model, batch) is False and memory._kept == bool(memory._glibc())
    # A checkpointed call (short of memory, and fragmenting most) returns it.
    model.checkpointing = "always"
    assert memory.check_memory(model, batch) is True and not memory._kept
    model.checkpointing = "auto"
