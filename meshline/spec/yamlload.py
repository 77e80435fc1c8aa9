"""Phase 1: YAML text → plain Python values plus a table of where each value came from.

PyYAML's composer gives nodes with marks; this module converts them to plain
``dict``/``list``/``str``/``int``/``float``/``bool``/``None`` values itself (not
through PyYAML's constructor) so that it can record the 1-based line and column of
every key and value by its path, e.g. ``("spec", "triggers", 0, "target")``, and
report what PyYAML would silently accept:

- a key given twice in one mapping is an error (the first value is kept);
- mapping keys are always strings, written as in the file (``on:`` is ``"on"``);
- timestamps stay strings (``2024-01-01``), so events stay JSON;
- unknown tags (``!foo``), complex keys, recursive aliases and documents that
  expand beyond a sane size are reported instead of raising;
- merge keys (``<<: *defaults``) work as in YAML 1.1.

Nothing in here raises anything but :class:`~meshline.errors.SpecError`.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from meshline.errors import Location, Problem, SpecError
from meshline.spec.findings import Path, describe

__all__ = ["Document", "LocationTable", "decode", "parse_yaml"]

MAX_DEPTH = 100
MAX_NODES = 200_000

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")}


@dataclass
class LocationTable:
    """Where each value (and each mapping key) of one document is, by path; 1-based."""

    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def location(self, path: Path = (), *, key: bool = False) -> Location:
        """The location of ``path`` (its key when ``key``), else of its nearest recorded parent."""
        p = tuple(path)
        if key and p in self.keys:
            return Location(self.file, *self.keys[p])
        while True:
            if p in self.values:
                return Location(self.file, *self.values[p])
            if not p:
                return Location(self.file)
            p = p[:-1]

    def line(self, path: Path) -> int:
        return self.location(path).line


@dataclass
class Document:
    """One YAML document of a file: its data (a mapping) and its location table."""

    data: dict[str, Any]
    table: LocationTable
    index: int = 0


class _Abort(Exception):
    """Conversion cannot go on (too deep, too large, recursive); carries the problem."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


def _pos(node: Node) -> tuple[int, int]:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


class _Converter:
    def __init__(self, file: str):
        self.file = file
        self.table = LocationTable(file)
        self.problems: list[Problem] = []
        self.count = 0
        self.active: set[int] = set()
        self.constructor = SafeConstructor()

    def problem(self, node: Node, message: str) -> None:
        self.problems.append(Problem(Location(self.file, *_pos(node)), message))

    def abort(self, node: Node, message: str) -> _Abort:
        return _Abort(Problem(Location(self.file, *_pos(node)), message))

    def convert(self, node: Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.abort(node, f"the document is too large (more than {MAX_NODES} values; aliases?)")
        if depth > MAX_DEPTH:
            raise self.abort(node, f"values are nested more than {MAX_DEPTH} levels deep")
        self.table.values[path] = _pos(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if id(node) in self.active:
            raise self.abort(node, "recursive alias: a value contains itself")
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if node.tag != _TAG + "seq":
                    self.problem(node, f"unsupported YAML tag {node.tag!r} (use plain lists)")
                return [self.convert(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
            if isinstance(node, MappingNode):
                if node.tag != _TAG + "map":
                    self.problem(node, f"unsupported YAML tag {node.tag!r} (use plain mappings)")
                return self.mapping(node, path, depth)
        finally:
            self.active.discard(id(node))
        raise self.abort(node, f"unsupported YAML node {type(node).__name__}")  # pragma: no cover

    def scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            self.problem(node, f"unsupported YAML tag {tag!r} (only plain values are allowed)")
            return node.value
        if tag in (_TAG + "str", _TAG + "timestamp"):
            return node.value
        try:
            if tag == _TAG + "int":
                return self.constructor.construct_yaml_int(node)
            if tag == _TAG + "float":
                return self.constructor.construct_yaml_float(node)
            if tag == _TAG + "bool":
                return self.constructor.construct_yaml_bool(node)
            return None
        except (ValueError, KeyError, yaml.YAMLError):
            self.problem(node, f"{node.value!r} is not a valid {tag.rsplit(':', 1)[-1]}")
            return node.value

    def pairs(self, node: MappingNode) -> tuple[list[tuple[Node, Node]], list[tuple[Node, Node]]]:
        """(explicit pairs, merged pairs in priority order) of a mapping node."""
        explicit: list[tuple[Node, Node]] = []
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                explicit.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.problem(source, "a merge key '<<' takes a mapping or a list of mappings")
                    continue
                if id(source) in self.active:
                    raise self.abort(source, "recursive alias: a mapping merges itself")
                self.active.add(id(source))
                try:
                    inner_explicit, inner_merged = self.pairs(source)
                finally:
                    self.active.discard(id(source))
                merged.extend(inner_explicit + inner_merged)
        return explicit, merged

    def mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        explicit, merged = self.pairs(node)
        for key_node, value_node in explicit:
            if not isinstance(key_node, ScalarNode):
                kind = "a mapping" if isinstance(key_node, MappingNode) else "a list"
                self.problem(key_node, f"a mapping key must be a plain value, found {kind}")
                continue
            key = key_node.value
            if key in result:
                first = self.table.keys.get((*path, key), (0, 0))[0]
                self.problem(key_node, f"duplicate key {key!r} (first defined at line {first})")
                continue
            self.table.keys[(*path, key)] = _pos(key_node)
            result[key] = self.convert(value_node, (*path, key), depth + 1)
        for key_node, value_node in merged:
            if not isinstance(key_node, ScalarNode) or key_node.value in result:
                continue
            key = key_node.value
            self.table.keys[(*path, key)] = _pos(key_node)
            result[key] = self.convert(value_node, (*path, key), depth + 1)
        return result


def decode(data: bytes, file: str) -> str:
    """Bytes of an integration file → text; UTF-8 (a BOM is allowed), or UTF-16 with a BOM."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not data.startswith(
        codecs.BOM_UTF32_LE
    ):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise SpecError(
            [
                Problem(
                    Location(file, line, col),
                    f"the file is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                    "integration files are YAML in UTF-8",
                )
            ]
        ) from None


def _line_col(text: str, position: int) -> tuple[int, int]:
    position = max(0, min(position, len(text)))
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1


def _yaml_problem(error: yaml.YAMLError, text: str, file: str) -> Problem:
    if isinstance(error, yaml.reader.ReaderError):
        char = error.character
        code = f"#x{ord(char) if isinstance(char, str) else char:04x}"
        return Problem(
            Location(file, *_line_col(text, error.position)),
            f"invalid YAML: the character {code} is not allowed in a YAML file (binary data?)",
        )
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file)
        message = error.problem or error.context or "syntax error"
        if error.context and error.problem:
            context = error.context
            if error.context_mark is not None and error.context_mark is not mark:
                context += f" that starts at line {error.context_mark.line + 1}"
            message += f" ({context})"
        return Problem(where, f"invalid YAML: {message}")
    return Problem(Location(file), f"invalid YAML: {error}")


def parse_yaml(text: str | bytes, file: str = "<string>") -> tuple[list[Document], list[Problem]]:
    """Parse every document of ``text``; return the non-empty ones and the problems found.

    A syntax error yields no documents and one problem at its mark. Other problems
    (duplicate keys, unsupported tags, a document that is not a mapping) are
    returned alongside the documents that could still be read.
    """
    if isinstance(text, (bytes, bytearray)):
        text = decode(bytes(text), file)
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as e:
        return [], [_yaml_problem(e, text, file)]
    except RecursionError:
        return [], [Problem(Location(file), f"invalid YAML: nested more than {MAX_DEPTH} levels deep")]
    documents: list[Document] = []
    problems: list[Problem] = []
    for index, node in enumerate(nodes):
        if node is None or (isinstance(node, ScalarNode) and node.tag == _TAG + "null"):
            continue  # an empty document
        converter = _Converter(file)
        try:
            data = converter.convert(node, (), 0)
        except _Abort as abort:
            problems.extend(converter.problems)
            problems.append(abort.problem)
            continue
        except RecursionError:
            problems.append(Problem(Location(file, *_pos(node)), "values are nested too deeply"))
            continue
        problems.extend(converter.problems)
        if not isinstance(data, dict):
            problems.append(
                Problem(
                    Location(file, *_pos(node)),
                    "expected an Integration (a mapping with apiVersion, kind, metadata and spec), "
                    f"found {describe(data)}",
                )
            )
            continue
        documents.append(Document(data, converter.table, index))
    return documents, problems
