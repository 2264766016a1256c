"""What a model claims: the facts the compiler derives and the verifier checks.

One record for both sides of the hand-off. The compiler's :class:`TypeTrace` carries
these claims beside its block rows; the verifier's ``Facts`` carries them beside what
it needs to sample and run a model (species, weights). A black box (an ASE calculator,
an export) gets the same record from the command line. So a claim added here reaches
the compiler, the verifier and black boxes at once, under one name and one docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from geocompose.types.group import Group
from geocompose.types.irreps import FieldType

__all__ = ["Claims", "claims_of"]


@dataclass(kw_only=True)
class Claims:
    """A model's symmetry, smoothness, locality and derivative claims.

    Args:
        outputs: output name → declared type.
        claim: the group claimed.
        derived: the group the blocks and the strategy guarantee (for a black box, the
            claim).
        exact: whether the claim is exact (False: stochastic frames, augmentation);
            approximate claims use ``tolerance``.
        tolerance: the bound an approximate claim states (None: measured only).
        strategy: the symmetry strategy's registered name (``black box`` for external
            models).
        frames: the strategy builds frames from the geometry (the verifier also samples
            structures whose frames are degenerate).
        continuous_frames: outputs claimed continuous (with continuous forces) along
            paths through geometries where PCA frames are degenerate.
        smooth: the energy is claimed continuous across the cutoff.
        cutoff: the graph's cutoff (Å); the range of the radial basis.
        reach: the longest edge the graph can build (Å; the long-range cutoff where
            there is one): atoms farther than this from every atom see nothing.
        periodic: periodic cells are accepted.
        extensive: energies are sums of local contributions (no per-structure
            normalisation, mean over atoms, all-pairs graph or global frame), so
            locality and extensivity are claims.
        conservative: derivative outputs (forces) → the energy they differentiate.
    """

    outputs: dict[str, FieldType] = field(default_factory=dict)
    claim: Group = Group.O3
    derived: Group = Group.O3
    exact: bool = True
    tolerance: float | None = None
    strategy: str = "built_in"
    frames: bool = False
    continuous_frames: bool = False
    smooth: bool = True
    cutoff: float = 5.0
    reach: float = 5.0
    periodic: bool = True
    extensive: bool = True
    conservative: dict[str, str] = field(default_factory=dict)


def claims_of(record: Claims) -> dict[str, object]:
    """The claims of ``record`` (a TypeTrace, Facts or Claims) as keyword arguments,
    with the mappings copied, to build another record from."""
    values = {f.name: getattr(record, f.name) for f in fields(Claims)}
    return {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
