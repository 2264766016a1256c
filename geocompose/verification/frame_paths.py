"""Continuity of frame strategies along paths through degenerate geometries.

A frame strategy builds frames from the geometry; where the frame is ill-defined (PCA
eigenvalues that meet: a rectangle deformed through a square, an isosceles triangle
through the equilateral one, a stretched tetrahedron through the regular one, a
tetragonal cell through the cubic one) a single frame must jump (Dym, Lawrence and
Siegel, ICML 2024), and so may the outputs. Each path is walked in coarse steps over
``t in [-1, 1]`` with the degenerate geometry at ``t = 0``, and once more at
``t = ±FRAME_JUMP_DELTA``. The figure is the largest difference between the outputs at
``-delta``, ``0`` and ``+delta``, relative to the output's size on the path; the report also gives it as a multiple of the
path's largest slope (a Lipschitz-type ratio: about 1 or less for a continuous,
differentiable output, about ``1 / delta`` times the relative jump for a
discontinuous one). Claimed for strategies registered continuous; measured for the
other frame strategies.
"""

from __future__ import annotations

from collections.abc import Callable

import ase
import numpy as np
import torch

from geocompose.data.batch import Batch
from geocompose.types import Level
from geocompose.verification import tolerances
from geocompose.verification.checks import Measured, detached
from geocompose.verification.record import Check, Rows, Sample, Skip

PATH_STEPS = 8
"""Coarse steps of each path (t = -1 ... 1, the degenerate geometry at t = 0)."""

Path = Callable[[str, float], ase.Atoms]


def rectangle(symbol: str, t: float) -> ase.Atoms:
    """A planar rectangle of half-sides 1.1 (1 + 0.25 t) and 1.1 (1 - 0.1 t) Å: a square
    at t = 0. (Not 1 ± 0.25 t: the rectangles at t and -t would then be congruent, and
    an invariant energy equal there whether or not it jumps.)"""
    a, b = 1.1 * (1 + 0.25 * t), 1.1 * (1 - 0.1 * t)
    corners = [[a, b, 0], [-a, b, 0], [-a, -b, 0], [a, -b, 0]]
    return ase.Atoms(symbols=[symbol] * 4, positions=corners)


def triangle(symbol: str, t: float) -> ase.Atoms:
    """An isosceles triangle with a 2.2 Å base: equilateral at t = 0."""
    height = 1.1 * np.sqrt(3) * (1 + 0.25 * t)
    corners = [[-1.1, 0, 0], [1.1, 0, 0], [0, height, 0]]
    return ase.Atoms(symbols=[symbol] * 3, positions=corners)


def tetrahedron(symbol: str, t: float) -> ase.Atoms:
    """A regular tetrahedron stretched by diag(1 + 0.2 t, 1, 1 - 0.1 t): three
    distinct covariance eigenvalues except at t = 0, where all three are equal."""
    vertices = 0.9 * np.array([[1, 1, 1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]], float)
    return ase.Atoms(symbols=[symbol] * 4, positions=vertices * [1 + 0.2 * t, 1, 1 - 0.1 * t])


def tetragonal_cell(symbol: str, t: float) -> ase.Atoms:
    """A one-atom cell of 2.6 Å edges scaled by diag(1 + 0.05 t, 1, 1 - 0.05 t): cubic at
    t = 0."""
    cell = np.diag([2.6 * (1 + 0.05 * t), 2.6, 2.6 * (1 - 0.05 * t)])
    return ase.Atoms(symbols=[symbol], positions=[[0.3, 0.2, 0.1]], cell=cell, pbc=True)


MOLECULE_PATHS: dict[str, Path] = {
    "rectangle through square": rectangle,
    "triangle through equilateral": triangle,
    "tetrahedron through regular": tetrahedron,
}
CELL_PATHS: dict[str, Path] = {"tetragonal through cubic cell": tetragonal_cell}


def walk(subject, path: Path, symbol: str) -> dict[str, Measured]:
    """Per output: the relative jump at the degenerate point, and where."""
    delta = tolerances.FRAME_JUMP_DELTA
    coarse = np.linspace(-1.0, 1.0, PATH_STEPS + 1)
    middle = PATH_STEPS // 2  # coarse[middle] is t = 0, the degenerate geometry itself
    points = [*coarse, -delta, delta]
    batch = Batch.from_ase([path(symbol, float(t)) for t in points], dtype=subject.dtype)
    out = detached(subject(batch))
    measured = {}
    for name, ftype in subject.outputs.items():
        if ftype.irreps is None or out[name].numel() == 0:
            continue
        node = ftype.level is Level.NODE
        rows = [out[name][batch.batch == s] if node else out[name][s] for s in range(len(points))]
        values = torch.stack([r.reshape(-1) for r in rows]).double()  # (points, dim)
        scale = max(float(values[: len(coarse)].abs().max()), tolerances.SCALE_FLOOR)
        # Either side of the degenerate point, and each side against the point itself.
        near = torch.stack([values[-2], values[middle], values[-1]])
        jump = float((near.unsqueeze(0) - near.unsqueeze(1)).abs().max()) / scale
        step = coarse[1] - coarse[0]
        slope = float((values[1 : len(coarse)] - values[: len(coarse) - 1]).abs().max()) / (
            step * scale
        )
        if slope * step > 1e-12:
            ratio = f"{jump / (2 * delta) / slope:.1e} x the slope"
        else:  # the output does not move along the path (to rounding): no slope to compare
            ratio = "flat path"
        measured[name] = Measured(jump, jump, f"{name}: jump {jump:.1e} = {ratio}")
    return measured


def measure_paths(s: Sample, paths: dict[str, Path]) -> Measured:
    """The largest jump over ``paths`` and every output."""
    symbol = s.subject.facts.species[0]
    worst, total, where, count = 0.0, 0.0, "", 0
    for label, path in paths.items():
        for m in walk(s.subject, path, symbol).values():
            total, count = total + m.worst, count + 1
            if m.worst >= worst:
                worst, where = m.worst, f"{m.where} on {label}"
    return Measured(worst, total / max(count, 1), where)


def _molecule_paths(s: Sample) -> Rows:
    if not s.subject.facts.frames:
        return Skip("the model builds no frames from the geometry")
    return [("continuity through degenerate frames", measure_paths(s, MOLECULE_PATHS))]


def _cell_paths(s: Sample) -> Rows:
    facts = s.subject.facts
    if not facts.frames:
        return Skip("the model builds no frames from the geometry")
    if not facts.periodic:
        return Skip("the model is for molecules only (graph or block not periodic)")
    return [("continuity through degenerate frames (cell)", measure_paths(s, CELL_PATHS))]


CHECKS: tuple[Check, ...] = (
    Check(
        "continuity through degenerate frames",
        "claimed for continuous frame strategies (weighted frames); measured for the others",
        lambda f: f.continuous_frames,
        lambda f: tolerances.FRAME_CONTINUITY_RTOL,
        _molecule_paths,
        "a frame that jumps where PCA eigenvalues meet (square, equilateral, regular "
        "tetrahedron): energies and forces jump with it",
    ),
    Check(
        "continuity through degenerate frames (cell)",
        "measured (frame strategies on periodic models)",
        lambda f: False,
        lambda f: tolerances.FRAME_CONTINUITY_RTOL,
        _cell_paths,
        "the same through a cubic cell, where every atom's neighbour sum vanishes",
    ),
)
