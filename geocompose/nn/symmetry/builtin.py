"""Symmetry strategies that wrap nothing: the architecture carries (or lacks) it."""

from __future__ import annotations

from typing import Literal

from geocompose.nn.symmetry.base import Strategy
from geocompose.registry import Kind, KnobModel, register


class BuiltInParams(KnobModel):
    type: Literal["built_in"] = "built_in"


@register(Kind.STRATEGY, exact=True)
class BuiltIn(Strategy):
    """The blocks guarantee the symmetry by construction; the model's guarantee is the
    weakest of its blocks' guarantees.

    YAML: ``symmetry: {group: O(3), strategy: built_in}``
    """

    Params = BuiltInParams


class NoStrategyParams(KnobModel):
    type: Literal["none"] = "none"


@register(Kind.STRATEGY, exact=True)
class NoStrategy(Strategy):
    """Nothing is enforced: the model has whatever its blocks give (often nothing). A
    claim beyond that is what the verifier exists to refute.

    YAML: ``symmetry: {group: none, strategy: none}``
    """

    Params = NoStrategyParams
