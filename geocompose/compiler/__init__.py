"""Blueprint → typed stages → built model, with a readable type trace."""

from geocompose.compiler.assemble import check, compile, interaction_upstream, load
from geocompose.compiler.trace import TraceRow, TypeTrace

__all__ = ["TraceRow", "TypeTrace", "check", "compile", "interaction_upstream", "load"]
