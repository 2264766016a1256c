"""Typed metadata of registry entries: what kind of knob, which family, which group."""

from __future__ import annotations

import enum

from geocompose.types.group import Group

__all__ = ["Family", "Group", "Kind"]


class Kind(str, enum.Enum):
    """Where in the pipeline a knob choice plugs in.

    Each kind but one is chosen at its own blueprint key; the edge embedding is the
    stage that evaluates the ``radial``, ``envelope`` and ``angular`` knobs together.
    """

    GRAPH = "graph"
    NODE_EMBEDDING = "node_embedding"
    RADIAL = "radial"
    ENVELOPE = "envelope"
    ANGULAR = "angular"
    EDGE_EMBEDDING = "edge_embedding"
    INTERACTION = "interaction"
    READOUT = "readout"
    STRATEGY = "strategy"


class Family(str, enum.Enum):
    """The survey's taxonomy of geometric GNNs (plus 'component' for non-interactions)."""

    INVARIANT = "invariant"  # scalarise geometry first (SchNet, DimeNet, GemNet)
    CARTESIAN = "cartesian"  # scalar + vector features (EGNN, PaiNN, GVP)
    SPHERICAL = "spherical"  # irreps and tensor products (TFN, NequIP, MACE)
    UNCONSTRAINED = "unconstrained"  # symmetry from outside (FAENet)
    COMPONENT = "component"  # graph builders, bases, envelopes, readouts, strategies
