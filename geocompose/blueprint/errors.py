"""Turn a pydantic ``ValidationError`` into located, one-line blueprint errors.

pydantic reports each error with a ``loc`` such as
``("interactions", 0, "schnet", "hidden")``. Two things stand between that and what a
user needs to read:

* pydantic inserts segments that are not keys of the data: the tag of a
  discriminated union (``"schnet"`` above) and the member label of a plain union
  (``"int"``, ``"str"``). They are dropped by walking the ``loc`` over the data the
  blueprint actually holds, so the knob path is ``interactions[0].hidden``.
* its messages are written for programmers ("Input should be greater than 0"). Each
  error becomes one sentence that says what was wrong and what would be valid,
  with a ``difflib`` "did you mean" for misspelt names.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Literal, Union, get_args, get_origin

import pydantic

from geocompose.blueprint.sourcemap import KeyPath, SourceMap, format_knob
from geocompose.errors import BlueprintError, BlueprintErrors, Location, did_you_mean
from geocompose.registry.core import FIELD_INPUT_ERROR

__all__ = ["did_you_mean", "translate_validation_error"]

Suggestions = Callable[[KeyPath, str], Sequence[str] | None]
"""``(knob_path, error_type) -> valid names there`` (or ``None`` when unknown)."""

_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _show(value: object) -> str:
    """A short, YAML-flavoured rendering of an input value for ``got ...``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _names(listing: object) -> list[str]:
    """The quoted names in pydantic's ctx strings (``"'a', 'b' or 'c'"``)."""
    return _QUOTED.findall(str(listing)) if listing is not None else []


# ---------------------------------------------------------------- loc → knob path


def _knob_path(loc: tuple, data: object, error_type: str) -> tuple[KeyPath, bool]:
    """Drop the segments pydantic inserts; keep the ones that are keys of ``data``.

    Returns:
        ``(path, dropped)``: the knob path, and whether a plain-union member label was
        dropped (such errors are alternatives for one value and get merged).
    """
    path: list[str | int] = []
    cursor: object = data
    dropped_label = False
    for i, seg in enumerate(loc):
        last = i == len(loc) - 1
        nxt = None if last else loc[i + 1]
        if last and error_type == "missing":
            path.append(seg)  # the key that is not there
        elif isinstance(cursor, dict):
            tag_values = {v for v in cursor.values() if isinstance(v, str)}
            # A discriminator tag is a value of the mapping (``type: schnet``), and is
            # followed by a field name; it can coincide with a key (``radius: ...``).
            next_is_key = isinstance(nxt, str) and nxt in cursor
            is_tag = seg in tag_values and (seg not in cursor or next_is_key)
            if not is_tag and seg in cursor:
                path.append(seg)
                cursor = cursor[seg]
            elif not is_tag:
                dropped_label = True
        elif isinstance(cursor, list) and isinstance(seg, int) and 0 <= seg < len(cursor):
            path.append(seg)
            cursor = cursor[seg]
        else:
            dropped_label = True  # a type label under a scalar, e.g. ('x', 'int')
    return tuple(path), dropped_label


# ------------------------------------------------------- walking the model by loc


def _unwrap(tp: object) -> object:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_model(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _literal_values(model: type[pydantic.BaseModel], field: str | None = None) -> list[object]:
    values: list[object] = []
    for name, info in model.model_fields.items():
        if field is None or field in (name, info.alias):
            ann = _unwrap(info.annotation)
            if get_origin(ann) is Literal:
                values.extend(get_args(ann))
    return values


def _union_members(tp: object) -> list[object]:
    tp = _unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [_unwrap(m) for m in get_args(tp) if m is not type(None)]
    return []


def _descend(tp: object, seg: object) -> object | None:
    """The type one ``loc`` segment below ``tp``, or ``None`` when unknown."""
    tp = _unwrap(tp)
    members = _union_members(tp)
    if members:
        for member in members:
            if _is_model(member) and (seg in _literal_values(member) or seg == member.__name__):
                return member  # the segment was the union tag or member label
        return _descend(members[0], seg) if len(members) == 1 else None
    if _is_model(tp):
        for name, info in tp.model_fields.items():
            if seg in (name, info.alias):
                return info.annotation
        return None
    origin, args = get_origin(tp), get_args(tp)
    if isinstance(seg, int) and origin in (list, tuple, set, frozenset, Sequence, typing.Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return args[seg] if seg < len(args) else None
        return args[0] if args else None
    if isinstance(seg, str) and origin in (dict, Mapping, typing.Mapping) and len(args) == 2:
        return args[1]
    return None


def _type_at(model: type[pydantic.BaseModel] | None, loc: tuple) -> object | None:
    tp: object | None = model
    for seg in loc:
        if tp is None:
            return None
        tp = _descend(tp, seg)
    return None if tp is None else _unwrap(tp)


def _allowed_keys(model: type[pydantic.BaseModel] | None, loc: tuple) -> list[str]:
    tp = _type_at(model, loc)
    if not _is_model(tp):
        return []
    return [info.alias or name for name, info in tp.model_fields.items()]


def _homes(model: type[pydantic.BaseModel] | None, loc: tuple, key: str) -> list[str]:
    """Where an unknown ``key`` at ``loc`` is a known key one level down.

    A top-level ``species:`` belongs in ``embedding.species``, a top-level ``cutoff:``
    in ``graph.cutoff``; saying so beats listing the keys allowed where it was written.
    """
    tp = _type_at(model, loc)
    if not _is_model(tp):
        return []
    homes = []
    for name, info in tp.model_fields.items():
        inner = _unwrap(info.annotation)
        candidates = [m for m in _union_members(inner) if _is_model(m)] or [inner]
        if any(_is_model(c) and key in _allowed_keys(c, ()) for c in candidates):
            homes.append(format_knob((*loc, info.alias or name, key)))
    return homes


# ------------------------------------------------------------------ messages

_COMPARE = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}
_WANTS = {
    "finite_number": "must be a finite number",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "set_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "none_required": "must be null",
    "multiple_of": "must be a multiple of {multiple_of}",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "allows at most {max_length} item(s)",
    "string_too_short": "must have at least {min_length} character(s)",
    "string_too_long": "must have at most {max_length} character(s)",
    "string_pattern_mismatch": "must match the pattern {pattern!r}",
}


def _choices(path: KeyPath, kind: str, listed: list, suggestions: Suggestions | None) -> list[str]:
    if listed:
        return [str(c) for c in listed]
    return list(suggestions(path, kind) or []) if suggestions else []


def _one_of(choices: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in sorted(choices))


def _then(*hints: str) -> str:
    """Join the non-empty hints that follow the main sentence: ``"; a b"``."""
    kept = [h for h in hints if h]
    return "; " + " ".join(kept) if kept else ""


def _as_written(value: object, written: str | None, *, quote: bool = True) -> str:
    """What YAML made of a scalar, and how to keep it a string: ``NO`` is ``false``."""
    if not written or isinstance(value, str):
        return ""  # nothing written (`name:`) has no text to quote
    made = "" if written == _show(value) else f" (YAML reads {written} as {_show(value)})"
    return f'{made}; quote it if you mean the text: "{written}"' if quote else made


def _message(
    e: Mapping,
    path: KeyPath,
    model: type[pydantic.BaseModel] | None,
    suggestions: Suggestions | None,
    written: str | None = None,
) -> tuple[str, str]:
    """``(requirement, rest)`` for one error; the message is their concatenation.

    Keeping the requirement separate lets alternatives for one value merge into
    "must be an integer or a string; got a list".

    Args:
        written: the original text of a non-string scalar (from the source map), so
            a ``NO`` that YAML read as ``false`` is named and the fix, quoting, given.
    """
    kind, ctx, value, loc = e["type"], e.get("ctx") or {}, e.get("input"), tuple(e["loc"])
    got = f"; got {_show(value)}"
    if kind in ("string_type", "literal_error", "enum"):
        got += _as_written(value, written)
    if kind == FIELD_INPUT_ERROR:
        return ctx["message"], _as_written(value, written, quote=False)
    if kind == "missing":
        parent = format_knob(path[:-1])
        where = f"from {parent}" if parent else "at the top level"
        return f"missing required key {path[-1]!r} {where}", ""
    if kind == "extra_forbidden":
        key = path[-1] if path else loc[-1]
        allowed = _choices(path[:-1], kind, _allowed_keys(model, loc[:-1]), suggestions)
        listing = f"allowed keys: {', '.join(sorted(allowed))}" if allowed else ""
        suggestion = did_you_mean(key, allowed)
        homes = [] if suggestion else _homes(model, loc[:-1], str(key))
        if homes:
            suggestion = f"it belongs under {' or '.join(homes)}, not here;"
        return f"unknown key {key!r}", _then(suggestion, listing)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        disc = (_names(ctx.get("discriminator")) or ["type"])[0]
        tags = _names(ctx.get("expected_tags"))
        if not tags:
            tags = [
                str(v)
                for m in _union_members(_type_at(model, loc))
                if _is_model(m)
                for v in _literal_values(m, disc)
            ]
        tags = _choices(path, kind, tags, suggestions)
        expected = f"expected one of: {_one_of(tags)}" if tags else ""
        if kind == "union_tag_not_found":
            return f"needs a {disc!r} key to say which kind it is", _then(expected)
        tag = ctx.get("tag", value)
        return f"unknown {disc} {tag!r}", _then(did_you_mean(tag, tags), expected)
    if kind in ("literal_error", "enum"):
        tp = _type_at(model, loc)
        listed = list(get_args(tp)) if get_origin(tp) is Literal else _names(ctx.get("expected"))
        choices = _choices(path, kind, listed, suggestions)
        if choices:
            return f"must be one of {_one_of(choices)}", got + _then(did_you_mean(value, choices))
        return f"must be {ctx.get('expected', 'one of the allowed values')}", got
    if kind in _COMPARE:
        key, op = _COMPARE[kind]
        return f"must be {op} {ctx.get(key)}", got
    if kind in _WANTS:
        try:
            return _WANTS[kind].format(**ctx), got
        except (KeyError, IndexError, ValueError):
            return _WANTS[kind].split(" {")[0], got
    msg = " ".join(str(e.get("msg", kind)).split())  # one line, whatever pydantic wrote
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg, "" if kind in ("value_error", "assertion_error") else got


# ------------------------------------------------------------------ the entry point


def translate_validation_error(
    err: pydantic.ValidationError,
    data: object,
    sourcemap: SourceMap,
    *,
    model: type[pydantic.BaseModel] | None = None,
    suggestions: Suggestions | None = None,
) -> BlueprintErrors:
    """Every error in ``err`` as a located, one-line :class:`BlueprintError`.

    Args:
        err: what ``Model.model_validate(data)`` raised.
        data: the plain data that was validated (from :func:`load_yaml`); it tells
            the keys the user wrote from the segments pydantic inserted.
        sourcemap: where each value of ``data`` was written.
        model: the model that was validated. Optional; with it, unknown keys list
            the keys that model allows, and unions without tags in the error context
            list their tags.
        suggestions: optional ``(knob_path, error_type) -> names`` giving the valid
            names at a knob when neither the error nor ``model`` says (e.g. the
            registered block names); used for the list and the "did you mean".

    Returns:
        A :class:`BlueprintErrors` (raise it) holding one error per distinct problem,
        ordered by position in the file.
    """
    grouped: dict[tuple[KeyPath, str, Location], list[tuple[str, str]]] = {}
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        path, is_alternative = _knob_path(loc, data, e["type"])
        location = sourcemap.locate(path)
        if e["type"] == "extra_forbidden":
            location = sourcemap.key_location(path)
        elif e["type"] == FIELD_INPUT_ERROR:  # raised by a model, about one of its keys
            path = (*path, e["ctx"]["field"])
            location = sourcemap.locate(path)
            e = {**e, "input": _lookup(data, path)}
        elif e["type"] == "union_tag_invalid" and isinstance(_lookup(data, path), dict):
            disc = (_names((e.get("ctx") or {}).get("discriminator")) or ["type"])[0]
            path = (*path, disc)
            location = sourcemap.locate(path)
        want, rest = _message(e, path, model, suggestions, sourcemap.text(path))
        # Plain-union members each report their own error for the same value; merge
        # them into one "or" sentence. Other errors stay distinct.
        group = "alternatives" if is_alternative else f"{e['type']}:{want}"
        grouped.setdefault((path, group, location), []).append((want, rest))

    errors: list[BlueprintError] = []
    for (path, _, location), parts in grouped.items():
        wants = list(dict.fromkeys(w for w, _ in parts))
        merged = wants[0] + "".join(" or " + w.removeprefix("must be ") for w in wants[1:])
        errors.append(BlueprintError(merged + parts[0][1], location, format_knob(path) or None))
    if not errors:  # pydantic never raises an empty error, but never index into nothing
        errors.append(BlueprintError(" ".join(str(err).split()), sourcemap.locate(())))
    errors.sort(key=lambda b: (b.location.line, b.location.column) if b.location else (1 << 30, 0))
    return BlueprintErrors(errors)


def _lookup(data: object, path: KeyPath) -> object:
    for seg in path:
        try:
            data = data[seg]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return data
