"""The typed registry of knobs: Registry, Entry, @register and the Kind/Family/Group enums."""

from geocompose.registry.core import REGISTRY, Entry, KnobModel, Registry, RegistryError, register
from geocompose.registry.kinds import Family, Group, Kind

__all__ = [
    "REGISTRY",
    "Entry",
    "Family",
    "Group",
    "Kind",
    "KnobModel",
    "Registry",
    "RegistryError",
    "register",
]
