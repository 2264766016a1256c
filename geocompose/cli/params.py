"""A knob's params as rows (name, type, default, constraints, description).

Read from the params model itself: types and constraints from its JSON Schema (what
an editor checks against), defaults from ``model_fields``. Used by ``geocompose knobs``
and the generated ``docs/knobs.md``.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass

import pydantic_core

from geocompose.registry import REGISTRY, Kind, KnobModel

__all__ = ["ParamRow", "param_rows"]


@dataclass(frozen=True)
class ParamRow:
    """One params field of a knob, as the docs and tables show it.

    Args:
        name: the YAML key; nested knob models give dotted names (``tensor_product.l_max``).
        type: e.g. ``int``, ``float | null``, ``list[int]``, ``'ssp' | 'silu'``.
        default: the default as YAML would write it, or ``required``.
        constraints: e.g. ``> 0``, ``0 <= x <= 8``, ``matches ^[a-z]+$``.
        description: the field's description, when it has one.
    """

    name: str
    type: str
    default: str
    constraints: str
    description: str


def _yaml(value: object) -> str:
    """A JSON-able value as flow-style YAML: ``null``, ``true``, ``[64, 32]``, ``{p: 6}``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value) if value == "" or value.strip() != value else value
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _resolve(prop: dict, defs: dict) -> dict:
    ref = prop.get("$ref")
    return defs.get(ref.rsplit("/", 1)[-1], prop) if ref else prop


_JSON_TYPES = {
    "integer": "int",
    "number": "float",
    "string": "str",
    "boolean": "bool",
    "null": "null",
}


def _type(prop: dict, defs: dict) -> str:
    prop = _resolve(prop, defs)
    if "enum" in prop:
        return " | ".join(repr(v) for v in prop["enum"])
    if "const" in prop:
        return repr(prop["const"])
    if "anyOf" in prop or "oneOf" in prop:
        return " | ".join(_type(p, defs) for p in prop.get("anyOf", prop.get("oneOf")))
    kind = prop.get("type")
    if kind == "array":
        return f"list[{_type(prop.get('items', {}), defs)}]" if prop.get("items") else "list"
    if kind == "object":
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict) and not prop.get("properties"):
            return f"mapping of {_type(extra, defs)}"
        return "mapping"
    if isinstance(kind, list):
        return " | ".join(_JSON_TYPES.get(k, k) for k in kind)
    return _JSON_TYPES.get(kind, kind or "any")


def _bounds(prop: dict) -> list[str]:
    out = []
    low = (
        ("> ", prop["exclusiveMinimum"])
        if "exclusiveMinimum" in prop
        else ((">= ", prop["minimum"]) if "minimum" in prop else None)
    )
    high = (
        ("< ", prop["exclusiveMaximum"])
        if "exclusiveMaximum" in prop
        else (("<= ", prop["maximum"]) if "maximum" in prop else None)
    )
    if low and high:
        out.append(f"{low[1]} {low[0].strip().replace('>', '<')} x {high[0].strip()} {high[1]}")
    elif low or high:
        op, bound = low or high
        out.append(f"{op}{bound}")
    for key, text in (
        ("multipleOf", "multiple of {}"),
        ("minLength", "at least {} character(s)"),
        ("maxLength", "at most {} character(s)"),
        ("minItems", "at least {} item(s)"),
        ("maxItems", "at most {} item(s)"),
        ("pattern", "matches `{}`"),
    ):
        if key in prop:
            out.append(text.format(prop[key]))
    return out


def _constraints(prop: dict, defs: dict) -> str:
    prop = _resolve(prop, defs)
    found = _bounds(prop)
    for member in prop.get("anyOf", []):
        found += _bounds(_resolve(member, defs))
    if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
        found += [f"each {c}" for c in _bounds(_resolve(prop["items"], defs))]
    return ", ".join(dict.fromkeys(found))


def _models_in(annotation: object) -> list[type[KnobModel]]:
    """Every knob model inside an annotation (through unions, lists, mappings, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, KnobModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _slot_kind(annotation: object) -> Kind | None:
    """The kind, when a field is a knob slot: it holds registered params of one kind."""
    by_params = {e.params: e.kind for e in REGISTRY.entries()}
    kinds = {by_params.get(m) for m in _models_in(annotation)}
    return kinds.pop() if len(kinds) == 1 and None not in kinds else None


def _nested_model(annotation: object) -> type[KnobModel] | None:
    """The one knob model a field holds (``TensorProduct`` or ``TensorProduct | None``)."""
    models = _models_in(annotation)
    return models[0] if len(models) == 1 and _slot_kind(annotation) is None else None


def param_rows(params: type[KnobModel], prefix: str = "") -> list[ParamRow]:
    """The fields of a params model (``type`` left out), nested knob models flattened.

    Types and constraints come from the model's JSON Schema (what an editor checks),
    defaults from ``model_fields`` (default factories are called).
    """
    schema = params.model_json_schema()
    defs = schema.get("$defs", {})
    rows: list[ParamRow] = []
    for name, info in params.model_fields.items():
        key = info.alias or name
        if not prefix and key == "type":
            continue  # the knob's name itself
        prop = schema.get("properties", {}).get(key, {})
        if info.is_required():
            default = "required"
        else:
            value = info.get_default(call_default_factory=True)
            try:
                default = _yaml(pydantic_core.to_jsonable_python(value))
            except pydantic_core.PydanticSerializationError:
                default = str(value)
        description = info.description or _resolve(prop, defs).get("description", "")
        kind = _slot_kind(info.annotation)
        type_ = _type(prop, defs)
        if kind is not None:  # a slot of the blueprint: name the kind, not the union
            knob = f"{kind.value} knob"
            type_ = {"array": f"list of {knob}s", "object": f"mapping of {knob}s"}.get(
                prop.get("type"), knob
            )
        rows.append(
            ParamRow(
                prefix + key,
                type_,
                default,
                _constraints(prop, defs),
                " ".join(description.split()),
            )
        )
        nested = _nested_model(info.annotation)
        if nested is not None:
            rows += param_rows(nested, prefix=f"{prefix}{key}.")
    return rows
