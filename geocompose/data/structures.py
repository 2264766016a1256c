"""Small structures for verification and tests: molecules, periodic cells, edge cases.

Every generator takes a numpy Generator, so samples are reproducible from a seed.
"""

from __future__ import annotations

import ase
import numpy as np
from ase.geometry import cellpar_to_cell

MIN_DISTANCE = 0.9  # Å; closer atoms are legal but not the generic case we sample


def _place(rng: np.random.Generator, count: int, box: np.ndarray, periodic: bool) -> np.ndarray:
    """Rejection-sample ``count`` points in a box (3, 3) at least MIN_DISTANCE apart."""
    points: list[np.ndarray] = []
    for _ in range(2000):
        if len(points) == count:
            break
        candidate = rng.random(3) @ box
        if periodic:
            ok = all(_min_image(candidate - p, box) >= MIN_DISTANCE for p in points)
        else:
            ok = all(np.linalg.norm(candidate - p) >= MIN_DISTANCE for p in points)
        if ok:
            points.append(candidate)
    return np.array(points).reshape(-1, 3)


def _min_image(d: np.ndarray, box: np.ndarray) -> float:
    frac = np.linalg.solve(box.T, d)
    frac -= np.round(frac)
    return float(np.linalg.norm(frac @ box))


def random_molecule(
    rng: np.random.Generator, species: list[str], cutoff: float, max_atoms: int = 7
) -> ase.Atoms:
    """3..max_atoms atoms in a cube of side ~0.6 x cutoff, so most pairs are edges."""
    count = int(rng.integers(3, max_atoms + 1))
    side = max(2.0, 0.6 * cutoff)
    positions = _place(rng, count, np.eye(3) * side, periodic=False)
    symbols = list(rng.choice(species, size=len(positions)))
    return ase.Atoms(symbols=symbols, positions=positions + rng.normal(size=3) * 3.0)


def random_cell(
    rng: np.random.Generator, species: list[str], max_atoms: int = 5, pbc=(True, True, True)
) -> ase.Atoms:
    """A triclinic cell (edges 3–6 Å, angles 60–120°) with 1..max_atoms atoms."""
    lengths = rng.uniform(3.0, 6.0, size=3)
    angles = rng.uniform(65.0, 115.0, size=3)
    cell = cellpar_to_cell(np.concatenate([lengths, angles]))
    count = int(rng.integers(1, max_atoms + 1))
    positions = _place(rng, count, cell, periodic=True)
    symbols = list(rng.choice(species, size=len(positions)))
    atoms = ase.Atoms(symbols=symbols, positions=positions, cell=cell, pbc=pbc)
    return atoms


def random_slab(rng: np.random.Generator, species: list[str]) -> ase.Atoms:
    """A cell periodic along two lattice vectors only (partial pbc)."""
    return random_cell(rng, species, pbc=(True, True, False))


def metal_bulk(symbol: str) -> ase.Atoms:
    """The primitive cell of ``symbol``'s crystal (fcc, bcc, ...): every distance tied
    with 11 or more others, on purpose; one atom, so cheap even for 4-body models."""
    from ase.build import bulk  # here, not at the top: ase.build costs 0.4 s on every import

    return bulk(symbol)


def single_atom(species: list[str]) -> ase.Atoms:
    return ase.Atoms(symbols=[species[0]], positions=[[0.1, -0.2, 0.3]])


def with_isolated_atom(rng: np.random.Generator, species: list[str], cutoff: float) -> ase.Atoms:
    """A molecule plus one atom far beyond the cutoff from everything."""
    atoms = random_molecule(rng, species, cutoff)
    far = atoms.positions.mean(axis=0) + np.array([4.0 * cutoff + 10.0, 0.0, 0.0])
    atoms += ase.Atoms(symbols=[species[-1]], positions=[far])
    return atoms


def dimer(symbol: str, distance: float) -> ase.Atoms:
    """Two atoms ``distance`` apart along a generic direction."""
    direction = np.array([0.48, -0.6, 0.64])
    direction /= np.linalg.norm(direction)
    return ase.Atoms(symbols=[symbol, symbol], positions=[[0.0, 0.0, 0.0], distance * direction])


def degenerate_frame_structures(species: list[str]) -> list[tuple[str, ase.Atoms]]:
    """Structures whose PCA covariance has repeated eigenvalues, on purpose.

    A tetrahedron (methane-like: isotropic), a cube (isotropic) and a planar hexagonal
    ring (two equal eigenvalues), in the model's own species.
    """
    a, b = species[0], species[-1]
    tetrahedron = ase.Atoms(
        symbols=[a] + [b] * 4,
        positions=[
            [0, 0, 0],
            [0.63, 0.63, 0.63],
            [-0.63, -0.63, 0.63],
            [-0.63, 0.63, -0.63],
            [0.63, -0.63, -0.63],
        ],
    )
    cube = ase.Atoms(
        symbols=[a] * 8, positions=[[x, y, z] for x in (0, 1.6) for y in (0, 1.6) for z in (0, 1.6)]
    )
    angles = np.arange(6) * np.pi / 3
    ring = ase.Atoms(
        symbols=[a] * 6,
        positions=np.stack([1.4 * np.cos(angles), 1.4 * np.sin(angles), 0 * angles], 1),
    )
    return [("tetrahedron", tetrahedron), ("cube", cube), ("planar ring", ring)]
