"""The symmetry groups a block or a model can guarantee."""

from __future__ import annotations

import enum


class Group(str, enum.Enum):
    """Rotation/reflection group of a guarantee, ordered by strength.

    Every guarantee includes translations and permutations of atoms; what varies is
    whether reflections (O(3)) or only proper rotations (SO(3)) are covered.
    """

    O3 = "O(3)"
    SO3 = "SO(3)"
    NONE = "none"

    @property
    def rank(self) -> int:
        return {Group.O3: 2, Group.SO3: 1, Group.NONE: 0}[self]

    def covers(self, other: Group) -> bool:
        """True when a guarantee of ``self`` implies one of ``other``."""
        return self.rank >= other.rank

    @staticmethod
    def weakest(groups) -> Group:
        """The guarantee of a composition: the weakest of its parts."""
        groups = list(groups)
        return min(groups, key=lambda g: g.rank) if groups else Group.O3
