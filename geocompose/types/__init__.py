"""The one type system: e3nn irreps on named fields (no nn.Modules here)."""

from geocompose.types import fields
from geocompose.types.group import Group
from geocompose.types.irreps import FieldType, IrrepsField, Level, discrete, parse_irreps, scalars
from geocompose.types.signature import FieldTypes, Signature, TypeRefusal, require

__all__ = [
    "FieldType",
    "FieldTypes",
    "Group",
    "IrrepsField",
    "Level",
    "Signature",
    "TypeRefusal",
    "discrete",
    "fields",
    "parse_irreps",
    "require",
    "scalars",
]
