"""Blueprint → typed stages → built model, with a readable type trace."""

from geocompose.compiler.assemble import (
    check,
    compile,
    exact_state,
    interaction_upstream,
    load,
    recompiled,
)
from geocompose.compiler.trace import TraceRow, TypeTrace

__all__ = [
    "TraceRow",
    "TypeTrace",
    "check",
    "compile",
    "exact_state",
    "interaction_upstream",
    "load",
    "recompiled",
]
