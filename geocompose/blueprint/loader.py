"""Read a blueprint file into plain data and a :class:`SourceMap`.

YAML is composed into nodes with PyYAML's *safe* loader (never ``yaml.load`` or the
full loader: a blueprint must not be able to construct Python objects) and the nodes
are walked by hand. Walking by hand is what lets every value keep its line and column,
and lets us refuse, each at its own location, what a blueprint has no use for: tags,
duplicate keys, non-string keys, alias bombs and absurd nesting.

Two deliberate departures from PyYAML's safe loader, both towards YAML 1.2:

* ``1e-3`` and ``2.5e5`` are floats (PyYAML's YAML 1.1 rules keep them as strings,
  a classic trap for learning rates and cutoffs).
* Dates are not resolved to ``datetime``; ``2024-01-01`` stays a string, because a
  blueprint is plain JSON-like data.
"""

from __future__ import annotations

import math
import pathlib
import re

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from geocompose.blueprint.sourcemap import KeyPath, SourceMap, format_knob
from geocompose.errors import BlueprintError, Location

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_EXPANDED_NODES", "load_yaml"]

MAX_ALIASES = 100
"""Most alias uses (``*name``) a blueprint may contain."""
MAX_EXPANDED_NODES = 10_000
"""Most nodes that aliases may add once expanded; refuses "billion laughs" bombs."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists."""

_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = _TAG + "str", _TAG + "map", _TAG + "seq", _TAG + "merge"
# The only scalar types a blueprint is made of: what JSON can hold, plus NaN/inf
# (kept as floats so the schema can refuse them with a location).
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
_KIND = {
    _TAG + "int": "a number",
    _TAG + "float": "a number",
    _TAG + "bool": "a boolean",
    _TAG + "null": "null",
    _SEQ: "a list",
    _MAP: "a mapping",
    _STR: "a string",
}

_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class _Refusal(Exception):
    """Raised inside the composer; turned into a located BlueprintError outside it."""

    def __init__(self, message: str, mark: yaml.Mark):
        super().__init__(message)
        self.message = message
        self.mark = mark


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts aliases and depth while nodes are built.

    The checks must happen during composition: composition itself recurses once per
    nesting level, and an alias graph is only a few nodes until something expands it,
    so refusing here keeps both a deep file and an alias bomb to milliseconds.
    """

    # YAML 1.1 resolvers minus timestamps, plus exponent floats (see module docstring).
    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML reads it as a class attribute
        first: [(tag, rx) for tag, rx in resolvers if tag != _TAG + "timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str):
        super().__init__(stream)
        self._aliases = 0
        self._expanded = 0
        self._depth = 0
        self._open_anchors: set[str] = set()
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: object) -> Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._check_alias(event)
            return super().compose_node(parent, index)
        nests = isinstance(event, yaml.CollectionStartEvent)
        if nests:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refusal(
                    f"nesting deeper than {MAX_DEPTH} levels is not allowed", event.start_mark
                )
        anchor = event.anchor
        if anchor is not None:
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= nests
            self._open_anchors.discard(anchor)

    def _check_alias(self, event: yaml.AliasEvent) -> None:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise _Refusal(
                f"more than {MAX_ALIASES} aliases (*name) in one blueprint are not allowed",
                event.start_mark,
            )
        if event.anchor in self._open_anchors:
            raise _Refusal(
                f"alias *{event.anchor} refers to a value that contains it; "
                "recursive aliases are not allowed",
                event.start_mark,
            )
        target = self.anchors.get(event.anchor)
        if target is None:
            return  # undefined alias: PyYAML's own ComposerError says so, with its mark
        self._expanded += self._size(target)
        if self._expanded > MAX_EXPANDED_NODES:
            raise _Refusal(
                f"aliases expand to more than {MAX_EXPANDED_NODES} values; "
                "refusing a possible alias bomb",
                event.start_mark,
            )

    def _size(self, node: Node) -> int:
        """Nodes in ``node`` once every alias inside it is expanded (memoised)."""
        key = id(node)
        if key not in self._sizes:
            children: list[Node] = []
            if isinstance(node, SequenceNode):
                children = node.value
            elif isinstance(node, MappingNode):
                children = [n for pair in node.value for n in pair]
            # Recursion depth is bounded by MAX_DEPTH, already enforced.
            self._sizes[key] = 1 + sum(self._size(c) for c in children)
        return self._sizes[key]


_GuardedLoader.add_implicit_resolver(_TAG + "float", _EXPONENT_FLOAT, list("-+0123456789"))


def _location(file: str, mark: yaml.Mark | None) -> Location:
    # PyYAML marks are 0-based; users and editors count from 1.
    if mark is None:
        return Location(file, 1, 1)
    return Location(file, mark.line + 1, mark.column + 1)


def _offset_location(file: str, text: str | bytes, offset: int) -> Location:
    newline = "\n" if isinstance(text, str) else b"\n"
    head = text[:offset]
    line = head.count(newline) + 1
    column = offset - (head.rfind(newline) + 1) + 1
    return Location(file, line, column)


def _read(source: str | pathlib.Path) -> str:
    path = pathlib.Path(source)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BlueprintError(f"no such blueprint file: {path}") from None
    except IsADirectoryError:
        raise BlueprintError(f"{path} is a directory, not a blueprint file") from None
    except OSError as err:
        raise BlueprintError(f"cannot read blueprint file {path}: {err.strerror or err}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BlueprintError(
            f"{path} is not UTF-8 text (byte 0x{raw[err.start]:02x} cannot be decoded)",
            _offset_location(str(source), raw, err.start),
        ) from None


def _compose(file: str, text: str) -> Node | None:
    try:
        return yaml.compose(text, Loader=_GuardedLoader)
    except _Refusal as refusal:
        raise BlueprintError(refusal.message, _location(file, refusal.mark)) from None
    except yaml.MarkedYAMLError as err:
        message = f"malformed YAML: {err.problem or err.context}"
        if err.context and err.problem:
            # PyYAML's context is either "while parsing X" (where X started) or the
            # first half of a sentence the problem completes ("expected ... but found").
            line = f" at line {err.context_mark.line + 1}" if err.context_mark else ""
            if err.context.startswith("while"):
                message += f" ({err.context}{line})"
            else:
                message = f"malformed YAML: {err.context}{line}, {err.problem}"
        mark = err.problem_mark or err.context_mark
        raise BlueprintError(message, _location(file, mark)) from None
    except yaml.reader.ReaderError as err:
        raise BlueprintError(
            f"malformed YAML: {err.reason} (character {err.character!r})",
            _offset_location(file, text, err.position),
        ) from None
    except yaml.YAMLError as err:  # any other PyYAML error: keep it on one line
        raise BlueprintError(
            f"malformed YAML: {' '.join(str(err).split())}", Location(file, 1, 1)
        ) from None


class _Walker:
    """Turns composed nodes into plain data while filling a SourceMap."""

    def __init__(self, file: str):
        self.file = file
        self.sourcemap = SourceMap(file)
        self._constructor = SafeConstructor()

    def where(self, node: Node) -> Location:
        return _location(self.file, node.start_mark)

    def refuse(self, message: str, node: Node, path: KeyPath) -> BlueprintError:
        return BlueprintError(message, self.where(node), format_knob(path) or None)

    def walk(self, node: Node, path: KeyPath, key: Node | None = None) -> object:
        self.sourcemap.record(path, self.where(node), self.where(key) if key else None)
        if isinstance(node, MappingNode) and node.tag == _MAP:
            return {
                name: self.walk(value, (*path, name), k)
                for name, (k, value) in self._pairs(node, path).items()
            }
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, ScalarNode) and node.tag in _SCALAR_TAGS:
            if node.tag != _STR:
                self.sourcemap.record_text(path, node.value)
            return self._constructor.yaml_constructors[node.tag](self._constructor, node)
        tag = node.tag.replace(_TAG, "!!", 1) if node.tag.startswith(_TAG) else node.tag
        raise self.refuse(
            f"YAML tags are not allowed in a blueprint (found {tag}); "
            "write plain mappings, lists, strings and numbers",
            node,
            path,
        )

    def _key(self, node: Node, path: KeyPath) -> str:
        if isinstance(node, ScalarNode) and node.tag == _STR:
            return node.value
        if isinstance(node, ScalarNode) and node.tag in _SCALAR_TAGS:
            kind = _KIND[node.tag]
            raise self.refuse(
                f"mapping keys must be strings; got {kind} {node.value!r} "
                f'(quote it: "{node.value}")',
                node,
                path,
            )
        kind = _KIND.get(node.tag, f"a value tagged {node.tag!r}")
        raise self.refuse(f"mapping keys must be strings; got {kind}", node, path)

    def _pairs(self, node: MappingNode, path: KeyPath) -> dict[str, tuple[Node, Node]]:
        """The entries of a mapping, with YAML merge keys (``<<: *base``) applied.

        Keys written in the mapping win over merged ones, and earlier merge sources
        win over later ones, as the YAML merge-key spec says.
        """
        explicit: dict[str, tuple[Node, Node]] = {}
        merged: list[dict[str, tuple[Node, Node]]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if not (isinstance(source, MappingNode) and source.tag == _MAP):
                        raise self.refuse(
                            "a merge key '<<' takes a mapping or a list of mappings", source, path
                        )
                    merged.append(self._pairs(source, path))
                continue
            name = self._key(key_node, path)
            if name in explicit:
                first = explicit[name][0].start_mark.line + 1
                raise self.refuse(
                    f"duplicate key {name!r} (first written at line {first})",
                    key_node,
                    (*path, name),
                )
            explicit[name] = (key_node, value_node)
        for source in merged:
            for name, entry in source.items():
                explicit.setdefault(name, entry)
        return explicit


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})" if not math.isnan(value) else "a number (nan)"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    return "a list"


def load_yaml(source: str | pathlib.Path, *, text: str | None = None) -> tuple[object, SourceMap]:
    """Read a blueprint into plain data plus where each value was written.

    Args:
        source: the file to read, or, when ``text`` is given, only the name shown in
            locations (e.g. ``"<stdin>"`` or ``"mace.yaml"``).
        text: the YAML text itself; when given, nothing is read from disk.

    Returns:
        ``(data, sourcemap)``: ``data`` is a ``dict`` of plain ``dict``/``list``/
        ``str``/``int``/``float``/``bool``/``None`` values (the top level is always a
        mapping); ``sourcemap`` maps each key path in it to a 1-based location.

    Raises:
        BlueprintError: the file cannot be read or is not UTF-8; the YAML is
            malformed, empty, or not a mapping at the top; or it uses something a
            blueprint refuses (tags, duplicate or non-string keys, more than
            ``MAX_ALIASES`` aliases or ``MAX_EXPANDED_NODES`` expanded values,
            nesting deeper than ``MAX_DEPTH``). Each error names its location.

    >>> data, where = load_yaml("demo.yaml", text="name: demo\\ngraph: {cutoff: 5.0}\\n")
    >>> data["graph"]["cutoff"], str(where.locate(("graph", "cutoff")))
    (5.0, 'demo.yaml:2:17')
    """
    file = str(source)
    if text is None:
        text = _read(source)
    root = _compose(file, text)
    if root is None:
        raise BlueprintError(
            "empty file; expected a mapping of blueprint keys "
            "(name, graph, embedding, interactions, readout, ...)",
            Location(file, 1, 1),
        )
    walker = _Walker(file)
    data = walker.walk(root, ())
    if not isinstance(data, dict):
        raise BlueprintError(
            f"the top level of a blueprint must be a mapping of keys; got {_describe(data)}",
            walker.where(root),
        )
    return data, walker.sourcemap
