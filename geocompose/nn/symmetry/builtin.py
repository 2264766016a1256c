"""Symmetry strategies that wrap nothing: the architecture carries (or lacks) it."""

from __future__ import annotations

from typing import Literal

from geocompose.registry import Kind, KnobModel, register
from geocompose.types.group import Group


class BuiltInParams(KnobModel):
    type: Literal["built_in"] = "built_in"


@register(Kind.STRATEGY, exact=True)
class BuiltIn:
    """The blocks guarantee the symmetry by construction; the model's guarantee is the
    weakest of its blocks' guarantees.

    YAML: ``symmetry: {group: O(3), strategy: built_in}``
    """

    Params = BuiltInParams

    @staticmethod
    def derive(blocks_group: Group) -> Group:
        return blocks_group


class NoStrategyParams(KnobModel):
    type: Literal["none"] = "none"


@register(Kind.STRATEGY, exact=True)
class NoStrategy:
    """No symmetry is enforced or claimed beyond what the blocks happen to give.

    YAML: ``symmetry: {group: none, strategy: none}``
    """

    Params = NoStrategyParams

    @staticmethod
    def derive(blocks_group: Group) -> Group:
        return blocks_group
