"""benchmarks/volume_errors.py: energy and pressure errors by volume per atom."""

from __future__ import annotations

from pathlib import Path

from ase.calculators.emt import EMT
from ase.io import read
from benchmark_scripts import loaded

CU = Path(__file__).parents[2] / "geocompose" / "data" / "examples" / "cu_emt_small.extxyz"


class ShiftedEMT(EMT):
    """EMT plus 10 meV per atom: a model off by a constant."""

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        self.results["energy"] += 0.010 * len(self.atoms)


def test_the_reference_itself_has_no_error_and_an_offset_shows_in_every_volume():
    with loaded("volume_errors") as script:
        table = script.volume_table
    frames = read(CU, index=":6")
    assert all(a.pbc.all() for a in frames)
    exact = table(read(CU, index=":6"), EMT())
    cells, mean, _, spread, pressure = exact[-1].split()[1:6]
    assert cells == "6" and abs(float(mean)) + float(spread) + abs(float(pressure)) == 0, exact
    shifted = table(frames, ShiftedEMT())
    for line in shifted[1:]:
        mean, _, spread, pressure = line.split()[2:6]
        assert (float(mean), float(spread), abs(float(pressure))) == (10.0, 0.0, 0.0), shifted
