"""The one feature type: e3nn ``Irreps``, plus ``Discrete`` for index-valued fields.

Blueprints spell irreps in e3nn syntax (``"64x0e + 16x1o"``). One pydantic type parses
them with e3nn's own parser and prints the canonical, simplified form, so parity is
always explicit in traces (``y`` parity, e.g. ``1y``, is resolved to ``1o`` for odd l).

For l = 1, e3nn's component order is Cartesian ``(x, y, z)`` and
``Irreps("1o").D_from_matrix(R) == R`` (checked in ``tests/unit/types``), so Cartesian
vectors (forces, dipoles, EGNN coordinates) *are* ``1o`` irreps with no reordering.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from e3nn import o3
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from geocompose.types.bounds import MAX_SIZE


def parse_irreps(value: Any) -> o3.Irreps:
    """Parse e3nn irreps syntax; ``"y"`` parity becomes explicit ``e``/``o``."""
    if isinstance(value, o3.Irreps):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # A bare channel count means that many scalars: `features: 128` is `128x0e`.
        if value <= 0:
            raise ValueError(f"a channel count must be positive; got {value}")
        if value > MAX_SIZE:
            raise ValueError(f"a channel count must be <= {MAX_SIZE}; got {value}")
        return o3.Irreps(f"{value}x0e")
    # ValueError, not TypeError: pydantic reports a ValueError at the knob.
    if not isinstance(value, str):
        raise ValueError(  # noqa: TRY004
            f"irreps must be a string like '64x0e + 16x1o'; got {type(value).__name__}"
        )
    try:
        irreps = o3.Irreps(value)
    except (ValueError, AssertionError, TypeError) as err:
        raise ValueError(
            f"'{value}' is not valid irreps syntax; write e.g. '64x0e + 16x1o + 8x2e' ({err})"
        ) from None
    if irreps.dim == 0:
        raise ValueError(f"irreps '{value}' are empty")
    too_many = [f"{mul}x{ir}" for mul, ir in irreps if mul > MAX_SIZE]
    if too_many:
        raise ValueError(
            f"irreps '{value}': at most {MAX_SIZE} channels per irrep; got {', '.join(too_many)}"
        )
    return irreps


IrrepsField = Annotated[
    o3.Irreps,
    PlainValidator(parse_irreps),
    PlainSerializer(lambda irreps: str(irreps), return_type=str),
    WithJsonSchema({"type": "string", "description": "e3nn irreps, e.g. '64x0e + 16x1o'"}),
]
"""Pydantic field type for irreps written in a blueprint."""


class Level(str, enum.Enum):
    """What one row of a field belongs to; tells the verifier how a permutation acts."""

    NODE = "node"  # one row per atom
    EDGE = "edge"  # one row per directed edge
    STRUCTURE = "structure"  # one row per structure in the batch


@dataclass(frozen=True)
class FieldType:
    """The declared type of one named field.

    Args:
        irreps: e3nn irreps of the last dimension, or ``None`` for a ``Discrete`` field
            (species, indices) that no group element acts on.
        level: what one row is (atom, edge, structure).
        translates: True for fields that move with the atoms (positions, updated
            positions); they shift under translation, every other field does not.
    """

    irreps: o3.Irreps | None
    level: Level
    translates: bool = False

    @property
    def is_discrete(self) -> bool:
        return self.irreps is None

    @property
    def is_scalar(self) -> bool:
        return self.irreps is not None and all(ir.l == 0 and ir.p == 1 for _, ir in self.irreps)

    def __str__(self) -> str:
        kind = "discrete" if self.irreps is None else str(self.irreps)
        return f"{kind} per {self.level.value}"


def scalars(n: int, level: Level) -> FieldType:
    """``n x 0e`` at ``level``."""
    return FieldType(o3.Irreps(f"{n}x0e"), level)


def discrete(level: Level) -> FieldType:
    """An index-valued field (no group acts on it)."""
    return FieldType(None, level)


def scalar_part(irreps: o3.Irreps) -> o3.Irreps:
    """The ``0e`` channels of ``irreps`` (invariant under O(3))."""
    return o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l == 0 and ir.p == 1]).simplify()


def is_subset(sub: o3.Irreps, sup: o3.Irreps) -> bool:
    """True when every irrep of ``sub`` appears in ``sup`` with at least that multiplicity."""
    have = {ir: mul for mul, ir in sup.simplify()}
    return all(have.get(ir, 0) >= mul for mul, ir in sub.simplify())


def wigner_d(irreps: o3.Irreps, rotation) -> torch.Tensor:
    """The representation matrix ``D(R)`` of ``irreps`` for an orthogonal ``R`` (3, 3).

    e3nn's ``D_from_matrix`` goes through Euler angles and loses ~1e-7 of accuracy near
    gimbal lock (measured here on Haar samples), which is above the verifier's 1e-9
    tolerance. This solves ``Y_l(R x) = D_l(R) Y_l(x)`` by least squares on fixed,
    well-spread points instead (error ~1e-15 in float64). The parity factor ``p`` enters
    for improper R, as in e3nn: ``D(R) = p^[det R < 0] D(det(R) R)``.
    """
    rotation = torch.as_tensor(rotation)
    dtype = rotation.dtype
    det = torch.det(rotation.double())
    proper = rotation.double() * torch.sign(det)
    points = _sample_points()
    blocks = []
    cache: dict[int, torch.Tensor] = {}
    for mul, ir in irreps:
        if ir.l not in cache:
            if ir.l == 0:
                cache[0] = torch.ones(1, 1, dtype=torch.float64)
            else:
                y = o3.spherical_harmonics(ir.l, points, normalize=True)  # (P, 2l+1)
                y_rot = o3.spherical_harmonics(ir.l, points @ proper.T, normalize=True)
                cache[ir.l] = torch.linalg.lstsq(y, y_rot).solution.T  # (2l+1, 2l+1)
        parity = ir.p if det < 0 else 1
        blocks += [parity * cache[ir.l]] * mul
    if not blocks:
        return torch.zeros(0, 0, dtype=dtype)
    return torch.block_diag(*blocks).to(dtype)


def _sample_points() -> torch.Tensor:
    generator = torch.Generator().manual_seed(12345)
    return torch.randn(64, 3, generator=generator, dtype=torch.float64)


def rotate_rows(values, irreps: o3.Irreps, rotations, row_structure):
    """Apply ``D(R_b)`` to each row, R_b the rotation of the row's structure.

    Args:
        values: (R, irreps.dim) rows (atoms or structures).
        irreps: their irreps.
        rotations: (B, 3, 3) orthogonal matrices, one per structure.
        row_structure: (R,) structure index of each row.

    Differentiable in ``rotations`` for l <= 1 (what forces through frames need);
    higher l use :func:`wigner_d` per structure.
    """
    det = torch.det(rotations)  # (B,)
    proper = rotations * det.sign().view(-1, 1, 1)
    out = []
    for (mul, ir), sl in zip(irreps, irreps.slices()):
        block = values[:, sl].reshape(-1, mul, ir.dim)  # (R, mul, 2l+1)
        parity = torch.where(det < 0, float(ir.p), 1.0)[row_structure].view(-1, 1, 1)
        if ir.l == 0:
            rotated = block
        elif ir.l == 1:
            rotated = torch.einsum("rij,rmj->rmi", proper[row_structure], block)
        else:
            single = o3.Irreps([(1, (ir.l, 1))])
            d = torch.stack([wigner_d(single, r) for r in proper.detach()])  # (B, 2l+1, 2l+1)
            rotated = torch.einsum("rij,rmj->rmi", d[row_structure].to(values.dtype), block)
        out.append((parity * rotated).reshape(values.shape[0], mul * ir.dim))
    return torch.cat(out, dim=1) if out else values
