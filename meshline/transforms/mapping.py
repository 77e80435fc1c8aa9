"""The ``mapping`` transformation: TriggerMesh's "Bumblebee" declarative JSON mapping.

Semantics follow TriggerMesh's ``Transformation`` kind (``flow.triggermesh.io/v1alpha1``),
implemented in ``pkg/flow/adapter/transformation`` of github.com/triggermesh/triggermesh
(``adapter.go``, ``pipeline.go``, ``transformer/{add,delete,shift,store,parse}`` and the
helpers in ``common/``). This is an independent implementation of that behaviour.

Config: ``context: [op]`` and ``data: [op]``; an op is ``{operation, paths: [{key, value,
separator}]}`` and each path is one step, run in the order written.

Order. Every event runs, as TriggerMesh does: (1) the ``store`` and ``parse`` steps of
``context``, (2) those of ``data``, (3) the ``add``/``delete``/``shift`` steps of
``context``, (4) those of ``data``. Variables are shared by both halves, so ``data`` may use
attributes stored in ``context`` and ``context`` may use values stored from ``data``.
Variables live for one event only.

Paths. ``key`` is split on ``separator`` (default ``.``); a segment ``name[N]`` (or ``[N]``)
also indexes an array (``a.b[0].c``, ``[1].x`` on a root array). Empty segments are skipped,
so an empty key or ``.`` is the whole document.

Operations:

- ``store``: variable ``key`` (conventionally ``$name``) := the value at path ``value``; a
  missing value (or JSON ``null``) leaves the variable unset.
- ``parse``: the string at ``key`` (``value: json``) is replaced by the JSON it holds; a missing
  key does nothing.
- ``add``: writes ``value`` at ``key``, creating objects/arrays on the way (arrays are padded
  with ``null``). The new value is *merged* into what is there (TriggerMesh's
  ``MergeJSONWithMap``): objects merge key by key, arrays element by element, ``null`` never
  overwrites, an array may replace an object or a scalar, but object keys written into an
  array are ignored. A string value is a template: every stored variable name in it is
  replaced by the variable's value; a value that is exactly one variable name keeps the
  variable's JSON type; unset variables stay literal, except inside ``( … )``: a group whose
  variables are all set loses its brackets, a group with an unset variable is dropped
  (``$first( $last)``). ``\\(`` and ``\\)`` are not grouping brackets.
- ``delete``: ``key`` only: remove it; ``key`` + ``value``: remove it if its text equals
  ``value`` (numbers and booleans compare as text: ``"42"`` matches ``42``); ``value`` only:
  remove every object member or array element whose scalar value matches, recursively; no
  key and no value: delete everything (data becomes absent). An array element that is
  deleted becomes ``null`` (indexes stay valid). A ``value`` naming a variable that holds a
  string compares with that string.
- ``shift``: ``key: OLD:NEW`` moves the value (an array element is removed from its array),
  merging it at ``NEW`` as ``add`` does; with ``value`` only when the current value equals it
  (same JSON type; a ``value`` naming a stored variable compares with the variable). A
  missing or ``null`` value does nothing.

Context: the attributes form one object: ``specversion``, ``id``, ``source``, ``type``,
``subject``, ``time``, ``datacontenttype``, ``dataschema`` at the top and the extensions under
``Extensions`` (``Extensions.NAME``; ``extensions.NAME`` is accepted too). The result must be
a valid event: required attributes present, attribute values strings (a number or boolean
becomes its JSON text), extension values strings, integers or booleans; else
:class:`TransformError`.

Data: ``bytes`` that parse as JSON are parsed; other binary or text data with data operations
is a :class:`TransformError`; absent data is JSON ``null`` (so ``add`` can build a payload).
When data operations change the data of an event whose ``datacontenttype`` is not JSON, it
becomes ``application/json``. The input event is never modified: changed containers are
copied along the changed paths only.

Where this deliberately differs from TriggerMesh (whose quirks are mostly bugs):

- a failing step raises :class:`TransformError` (dead letter) instead of being logged and
  skipped; missing keys are still no-ops;
- variables are per event (TriggerMesh keys them by ``id``+``source`` across concurrent
  events) and ``delete``'s ``value`` is resolved per event (TriggerMesh resolves it once);
- template substitution is deterministic (longest variable name first, groups matched by
  nesting) and inserted values are not scanned again for variable names; non-string values
  are inserted as JSON text (TriggerMesh prints Go values: ``1.234567e+06``, ``map[a:1]``);
- integers keep their precision (TriggerMesh rounds every number through float64);
- a number or boolean written to a string attribute (``add subject: $orderId`` with a numeric
  ``$orderId``) becomes its text; TriggerMesh fails to decode the context and drops the event;
- ``delete`` and ``shift`` honour a custom ``separator`` and paths into root arrays;
  ``delete`` compares paths, not their text (``a.b`` does not match a key named ``"a.b"``);
- a trailing index reads the element (``store`` of ``a[0]`` crashes TriggerMesh); negative
  indexes and indexes over 100000 are config errors; ``a[0][1]`` indexes twice;
- an empty key always means the whole document (TriggerMesh reads a member named ``""`` in
  ``store``/``parse`` but the whole document in ``add``);
- the context of an event whose data is not JSON can still be mapped (TriggerMesh rejects
  every event whose ``datacontenttype`` is not JSON), absent data is ``null`` (TriggerMesh
  fails), and ``datacontenttype`` becomes ``application/json`` only when it was not a JSON
  type (TriggerMesh always overwrites it); ``time`` is kept as written (TriggerMesh
  re-formats it in UTC);
- ``value`` may be any YAML value for ``add`` (kept as JSON) and any scalar for ``delete``
  and ``shift``; objects inside an ``add``/``shift`` value that have an ``""`` key are plain
  objects (TriggerMesh would treat ``""`` as "merge here").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import orjson

from meshline.attributes import problem as attribute_problem
from meshline.attributes import valid as attributes_valid
from meshline.config import Duration, doc
from meshline.errors import TransformError
from meshline.events import CONTEXT_ATTRIBUTES, CloudEvent, is_valid_extension_name
from meshline.transforms.limits import timeout_field

__all__ = ["MappingConfig", "Operation", "PathSpec", "compile_mapping", "parse_path"]

OperationName = Literal["add", "delete", "shift", "store", "parse"]
_OPERATIONS = ("add", "delete", "shift", "store", "parse")
_INIT_OPERATIONS = frozenset(("store", "parse"))  # TriggerMesh's "InitStep" transformers
_DEFAULT_SEPARATOR = "."
_SHIFT_DELIMITER = ":"
_EXTENSIONS = "Extensions"
_EXTENSION_ALIASES = frozenset((_EXTENSIONS, "extensions"))
_REQUIRED = ("id", "source", "type")
_RESERVED = CONTEXT_ATTRIBUTES | {"data"}
MAX_INDEX = 100_000

_INDEXED = re.compile(r"^([^\[\]]*)((?:\[\d+\])+)\Z")
_NEGATIVE = re.compile(r"\[-\d+\]\Z")
_INDEX = re.compile(r"\[(\d+)\]")
# A "( … )" group: brackets not escaped with a backslash, nothing bracketed inside.
_GROUP = re.compile(r"(?<!\\)\(([^()]*?)(?<!\\)\)")
_JSON_CT = re.compile(r"^(application/json|text/json|[^;]*\+json)\s*(;.*)?\Z", re.IGNORECASE)

Step = str | int  # an object member name, or an array index
Path = tuple[Step, ...]


# --------------------------------------------------------------------------- config


@dataclass(frozen=True, kw_only=True)
class PathSpec:
    """One step of an operation: a path and, depending on the operation, a value."""

    key: str = doc("the path (add/delete/parse), variable name (store) or 'OLD:NEW' (shift)", "")
    value: Any = doc("add: value or template; delete/shift: condition; store: path; parse: 'json'", None)
    separator: str = doc("the path separator (default '.')", "")


@dataclass(frozen=True, kw_only=True)
class Operation:
    """A Bumblebee operation applied to each of its paths in turn."""

    operation: OperationName = doc("one of add, delete, shift, store, parse")
    paths: list[PathSpec] = doc("the paths the operation applies to, in order")

    def __post_init__(self) -> None:
        op = self.operation
        if op not in _OPERATIONS:
            known = ", ".join(_OPERATIONS)
            raise ValueError(f"operation: unknown operation {op!r} (expected one of {known})")
        if not self.paths:
            raise ValueError(f"paths: operation {op!r} needs at least one path")
        for j, p in enumerate(self.paths):
            where = f"paths[{j}]"
            if not isinstance(p, PathSpec):
                raise ValueError(f"{where}: expected a path, got {p!r}")
            _validate_path_spec(op, p, where)


@dataclass(frozen=True, kw_only=True)
class MappingConfig:
    """TriggerMesh Bumblebee mapping of the event's attributes (context) and data."""

    context: list[Operation] = doc("operations on the attributes (attribute names, Extensions.NAME)", [])
    data: list[Operation] = doc("operations on the data (dotted JSON paths)", [])
    timeout: Duration = timeout_field()

    def __post_init__(self) -> None:
        for i, op in enumerate(self.context):
            for j, p in enumerate(op.paths):
                _validate_context_path_spec(op.operation, p, f"context[{i}].paths[{j}]")


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (str, bool, int)) or (isinstance(v, float) and math.isfinite(v))


def _is_json(v: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if isinstance(v, int) and not isinstance(v, bool):
        return -(2**63) <= v < 2**64  # what the JSON encoder can write
    if v is None or _is_scalar(v):
        return True
    if isinstance(v, list):
        return all(_is_json(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_json(x, depth + 1) for k, x in v.items())
    return False


def parse_path(key: str, separator: str = "") -> Path:
    """``a.b[0].c`` → ``("a", "b", 0, "c")``; empty segments are skipped (``""`` is the root)."""
    steps: list[Step] = []
    for segment in key.split(separator or _DEFAULT_SEPARATOR):
        if not segment:
            continue
        m = _INDEXED.match(segment)
        if m is None:
            if _NEGATIVE.search(segment):
                raise ValueError(f"negative array index in {key!r}")
            steps.append(segment)
            continue
        if m.group(1):
            steps.append(m.group(1))
        for digits in _INDEX.findall(m.group(2)):
            index = int(digits)
            if index > MAX_INDEX:
                raise ValueError(f"array index {index} in {key!r} is larger than {MAX_INDEX}")
            steps.append(index)
    return tuple(steps)


def _shift_paths(p: PathSpec) -> tuple[Path, Path]:
    parts = p.key.split(_SHIFT_DELIMITER)
    if len(parts) != 2:
        raise ValueError(f"shift key {p.key!r} must be 'OLD:NEW' with exactly one ':'")
    return parse_path(parts[0], p.separator), parse_path(parts[1], p.separator)


def _validate_path_spec(op: str, p: PathSpec, where: str) -> None:
    if not isinstance(p.key, str) or not isinstance(p.separator, str):
        raise ValueError(f"{where}: key and separator must be strings")
    try:
        if op == "shift":
            _shift_paths(p)
        elif op == "store":
            if not p.key:
                raise ValueError("store needs a key: the variable name, e.g. '$name'")
            if not isinstance(p.value, str) or not p.value:
                raise ValueError(
                    f"store {p.key!r} needs a value: the path to read ('.' for the whole document)"
                )
            parse_path(p.value, p.separator)
        else:
            parse_path(p.key, p.separator)
        if op == "parse" and p.value not in ("json", "JSON"):
            raise ValueError(f"parse {p.key!r}: value must be 'json' (the only format), got {p.value!r}")
        if op in ("delete", "shift") and p.value is not None and not _is_scalar(p.value):
            raise ValueError(f"{op} {p.key!r}: value must be a string, number or boolean, got {p.value!r}")
        if op == "add" and not _is_json(p.value):
            raise ValueError(f"add {p.key!r}: value must be a JSON value, got {p.value!r}")
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _context_path(path: Path, text: str) -> Path:
    """Check that ``path`` names an attribute or an extension; normalise ``extensions``."""
    if path and path[0] in _EXTENSION_ALIASES:
        path = (_EXTENSIONS, *path[1:])
        if len(path) == 1:
            return path
        name = path[1]
        if len(path) == 2 and isinstance(name, str):
            if not is_valid_extension_name(name):
                raise ValueError(
                    f"{text!r}: invalid extension name {name!r} (lowercase letters and digits, at most 20)"
                )
            if name in _RESERVED:
                raise ValueError(f"{text!r}: {name!r} is a reserved attribute name, not an extension")
            return path
        raise ValueError(f"{text!r}: expected Extensions.NAME")
    if len(path) == 1 and path[0] in CONTEXT_ATTRIBUTES:
        return path
    known = ", ".join(sorted(CONTEXT_ATTRIBUTES))
    raise ValueError(f"{text!r} is not a context attribute (expected one of {known}, or Extensions.NAME)")


def _validate_context_path_spec(op: str, p: PathSpec, where: str) -> None:
    try:
        if op == "shift":
            old, new = _shift_paths(p)
            old_text, new_text = p.key.split(_SHIFT_DELIMITER)
            _context_path(old, old_text)
            _context_path(new, new_text)
        elif op == "store":
            source = parse_path(p.value, p.separator)
            if source:  # an empty path stores the whole context object
                _context_path(source, p.value)
        elif op == "delete" and not parse_path(p.key, p.separator):
            if p.value is None or p.value == "":
                raise ValueError("delete without key and value would remove every attribute")
            if p.key != "":
                raise ValueError(f"delete {p.key!r} would remove every attribute")
        else:
            path = _context_path(parse_path(p.key, p.separator), p.key)
            typed = op == "add" and p.value is not None and not isinstance(p.value, str)
            if typed and (path[0] != _EXTENSIONS or len(path) != 2 or not isinstance(p.value, (int, bool))):
                raise ValueError(
                    f"add {p.key!r}: value must be a string (or an integer or boolean for an extension)"
                )
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


# --------------------------------------------------------------------------- JSON helpers

_MISSING: Any = object()


def _get(node: Any, path: Path) -> Any:
    for step in path:
        if type(step) is int:
            if not isinstance(node, list) or step >= len(node):
                return _MISSING
        elif not isinstance(node, dict) or step not in node:
            return _MISSING
        node = node[step]
    return node


def _merge(src: Any, val: Any) -> Any:
    """TriggerMesh's MergeJSONWithMap, without modifying ``src``."""
    if val is None:
        return src
    if isinstance(val, dict):
        if isinstance(src, list):
            return src  # object members written into an array are ignored
        base = src if isinstance(src, dict) else {}
        out = dict(base)
        for k, v in val.items():
            out[k] = _merge(base.get(k), v)
        return out
    if isinstance(val, list):
        if not isinstance(src, list):
            return val
        n = max(len(src), len(val))
        return [_merge(src[i] if i < len(src) else None, val[i] if i < len(val) else None) for i in range(n)]
    return val


# The key of ``variables`` (a run's own dict) naming the top-level object this run copied last:
# while it is still the document, the next operation may change it in place (see _own).
_TOP = "\x00top"


def _own(node: Any, own: dict[str, Any] | None) -> dict[Any, Any]:
    """The top-level object to change: ``node`` if this run made it, else a copy (now the run's)."""
    if own is not None and type(node) is dict and own.get(_TOP) is node:
        return node  # type: ignore[return-value]
    obj = dict(node) if isinstance(node, dict) else {}
    if own is not None:
        own[_TOP] = obj
    return obj


def _put(node: Any, path: Path, value: Any, i: int = 0, own: dict[str, Any] | None = None) -> Any:
    """Merge ``value`` at ``path``, creating what is missing; copies along the path.

    ``own`` (the run's variables): the top-level object may be the one the run copied last,
    changed in place then (nothing else holds it; every object below it is still copied).
    """
    if i == len(path):
        return _merge(node, value)
    step = path[i]
    if type(step) is int:
        if isinstance(node, list):
            out = list(node)
            if step >= len(out):
                out.extend([None] * (step + 1 - len(out)))
        else:
            out = [None] * (step + 1)
        out[step] = _put(out[step], path, value, i + 1)
        return out
    if isinstance(node, list):
        return node  # as _merge: a member cannot be written into an array
    obj = _own(node, own) if i == 0 else dict(node) if isinstance(node, dict) else {}
    obj[step] = _put(obj.get(step), path, value, i + 1)
    return obj


def _child(node: Any, step: Step) -> Any:
    if type(step) is int:
        return node[step] if isinstance(node, list) and step < len(node) else _MISSING
    return node.get(step, _MISSING) if isinstance(node, dict) else _MISSING


def _with_child(node: Any, step: Step, child: Any) -> Any:
    if isinstance(node, list):
        items = list(node)
        items[int(step)] = child
        return items
    out = dict(node)
    out[step] = child
    return out


def _extract(node: Any, path: Path, i: int = 0, own: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """``(node without the value at path, the value)``; ``_MISSING`` and ``node`` when absent."""
    if i == len(path):
        return {}, node  # shifting the whole document leaves an empty object (as TriggerMesh)
    step = path[i]
    child = _child(node, step)
    if child is _MISSING:
        return node, _MISSING
    if i == len(path) - 1:
        if type(step) is int:
            return node[:step] + node[step + 1 :], child  # shift removes the array element
        out = _own(node, own) if i == 0 else dict(node)
        del out[step]
        return out, child
    new_child, value = _extract(child, path, i + 1)
    if value is _MISSING:
        return node, _MISSING
    if i == 0 and isinstance(node, dict):
        out = _own(node, own)
        out[step] = new_child
        return out, value
    return _with_child(node, step, new_child), value


def _delete(node: Any, path: Path, text: str | None, i: int = 0, own: dict[str, Any] | None = None) -> Any:
    """Remove the value at ``path`` (only if it matches ``text``); arrays keep a ``null``."""
    if i == len(path):
        return None if text is None or _matches(node, text) else node
    step = path[i]
    child = _child(node, step)
    if child is _MISSING:
        return node
    if i == len(path) - 1:
        if text is not None and not _matches(child, text):
            return node
        if type(step) is int:
            return _with_child(node, step, None)
        out = _own(node, own) if i == 0 else dict(node)
        del out[step]
        return out
    new_child = _delete(child, path, text, i + 1)
    if new_child is child:
        return node
    if i == 0 and isinstance(node, dict):
        out = _own(node, own)
        out[step] = new_child
        return out
    return _with_child(node, step, new_child)


def _strip(node: Any, text: str) -> Any:
    """Remove, recursively, every member whose scalar value matches; matching elements → null."""
    if isinstance(node, dict):
        out: dict[str, Any] | None = None  # copied on the first change
        for k, v in node.items():
            new = _MISSING if _matches(v, text) else _strip(v, text)
            if out is None:
                if new is v:
                    continue
                out = {}
                for k2, v2 in node.items():
                    if k2 == k:
                        break
                    out[k2] = v2
            if new is not _MISSING:
                out[k] = new
        return node if out is None else out
    if isinstance(node, list):
        items = [None if _matches(v, text) else _strip(v, text) for v in node]
        return node if all(a is b for a, b in zip(items, node)) else items
    return node


def _number_text(v: int | float) -> str:
    """A number as Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` prints it (no exponent)."""
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    return format(Decimal(repr(v)).normalize(), "f")


def _matches(value: Any, text: str) -> bool:
    """TriggerMesh's delete filter: scalars compared as text."""
    if isinstance(value, str):
        return value == text
    if isinstance(value, bool):
        return text == ("true" if value else "false")
    if isinstance(value, (int, float)):
        return text == _number_text(value)
    return False


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return _number_text(value)


def _equal(expected: Any, actual: Any) -> bool:
    """TriggerMesh's shift condition: same JSON type and equal."""
    if isinstance(actual, str):
        return isinstance(expected, str) and expected == actual
    if isinstance(actual, bool):
        return isinstance(expected, bool) and expected == actual
    if isinstance(actual, (int, float)):
        return isinstance(expected, (int, float)) and not isinstance(expected, bool) and expected == actual
    return False


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class _Var:
    name: str


@dataclass(frozen=True)
class _Group:
    parts: tuple[str | _Var, ...]


class _Template:
    """An ``add`` value compiled against the variable names the mapping stores."""

    __slots__ = ("parts", "text", "whole")

    def __init__(self, text: str, names: list[str]):
        self.text = text
        self.whole = text in names
        self.parts: tuple[str | _Var | _Group, ...] = ()
        if self.whole or not names:
            return
        finder = re.compile("|".join(re.escape(n) for n in names))  # longest names first
        parts: list[str | _Var | _Group] = []
        pos = 0
        for g in _GROUP.finditer(text):
            inner = _split_vars(g.group(1), finder)
            if not any(isinstance(p, _Var) for p in inner):
                continue  # a group without variables is plain text, brackets included
            parts.extend(_split_vars(text[pos : g.start()], finder))
            parts.append(_Group(tuple(inner)))
            pos = g.end()
        parts.extend(_split_vars(text[pos:], finder))
        self.parts = tuple(parts)

    def render(self, variables: dict[str, Any]) -> Any:
        if self.whole:
            value = variables.get(self.text)
            return self.text if value is None else value
        if not self.parts:
            return self.text
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, _Var):
                value = variables.get(part.name)
                out.append(part.name if value is None else _json_text(value))
            else:
                names = [p.name for p in part.parts if isinstance(p, _Var)]
                if any(variables.get(n) is None for n in names):
                    continue  # a group with an unset variable disappears
                for p in part.parts:
                    out.append(p if isinstance(p, str) else _json_text(variables[p.name]))
        return "".join(out)


def _split_vars(text: str, finder: re.Pattern[str]) -> list[str | _Var]:
    parts: list[str | _Var] = []
    pos = 0
    for m in finder.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        parts.append(_Var(m.group(0)))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return parts


# --------------------------------------------------------------------------- compiled steps

Apply = Callable[[Any, dict[str, Any]], Any]


@dataclass(frozen=True)
class _Step:
    operation: str
    label: str  # "data[0].paths[1] (shift 'a:b')" for error messages
    apply: Apply


def _compile_step(op: str, p: PathSpec, label: str, names: list[str], context: bool) -> _Step:
    sep = p.separator

    def path_of(text: str) -> Path:
        path = parse_path(text, sep)
        return _context_path(path, text) if context and path else path

    if op == "store":
        source = path_of(p.value)
        variable = p.key

        def store(node: Any, variables: dict[str, Any]) -> Any:
            value = _get(node, source)
            variables[variable] = None if value is _MISSING else value
            variables.pop(_TOP, None)  # the value may be the object a later step would change
            return node

        return _Step(op, label, store)

    if op == "parse":
        target = path_of(p.key)

        def parse(node: Any, variables: dict[str, Any]) -> Any:
            value = _get(node, target)
            if value is _MISSING or value is None:
                return node
            if not isinstance(value, str):
                raise TransformError(f"{label}: expected a string holding JSON, got {_json_type(value)}")
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError as e:
                raise TransformError(f"{label}: the value is not valid JSON: {e}") from None
            return _put(node, target, parsed, own=variables)

        return _Step(op, label, parse)

    if op == "add":
        target = path_of(p.key)
        raw = "" if p.value is None else p.value  # TriggerMesh values are strings; none is ""
        if isinstance(raw, str):
            template = _Template(raw, names)

            def add(node: Any, variables: dict[str, Any]) -> Any:
                return _put(node, target, template.render(variables), own=variables)

        else:
            frozen = orjson.dumps(raw) if isinstance(raw, (dict, list)) else None

            def add(node: Any, variables: dict[str, Any]) -> Any:
                return _put(node, target, raw if frozen is None else orjson.loads(frozen), own=variables)

        return _Step(op, label, add)

    if op == "delete":
        condition = p.value
        if condition is None or condition == "":
            if p.key == "":

                def delete_all(node: Any, variables: dict[str, Any]) -> Any:
                    return None

                return _Step(op, label, delete_all)
            target = path_of(p.key)

            def delete_key(node: Any, variables: dict[str, Any]) -> Any:
                return _delete(node, target, None, own=variables)

            return _Step(op, label, delete_key)

        def text_of(variables: dict[str, Any]) -> str:
            if isinstance(condition, str):
                stored = variables.get(condition)
                return stored if isinstance(stored, str) else condition
            return _scalar_text(condition)

        if p.key == "":

            def delete_values(node: Any, variables: dict[str, Any]) -> Any:
                text = text_of(variables)
                return None if _matches(node, text) else _strip(node, text)

            return _Step(op, label, delete_values)
        target = path_of(p.key)

        def delete_if(node: Any, variables: dict[str, Any]) -> Any:
            return _delete(node, target, text_of(variables), own=variables)

        return _Step(op, label, delete_if)

    # shift
    old_text, new_text = p.key.split(_SHIFT_DELIMITER)
    old, new = path_of(old_text), path_of(new_text)
    condition = None if p.value == "" else p.value

    def shift(node: Any, variables: dict[str, Any]) -> Any:
        rest, value = _extract(node, old)  # (a copy: `node` is kept, unchanged, for the cases below)
        if value is _MISSING or value is None:
            return node
        if condition is not None:
            expected = condition
            if isinstance(condition, str):
                stored = variables.get(condition)
                if stored is not None:
                    expected = stored
            if not _equal(expected, value):
                return node
        return _put(rest, new, value, own=variables)

    return _Step(op, label, shift)


def _compile_scope(
    scope: str, operations: list[Operation], names: list[str]
) -> tuple[list[_Step], list[_Step]]:
    init: list[_Step] = []
    main: list[_Step] = []
    for i, op in enumerate(operations):
        for j, p in enumerate(op.paths):
            label = f"mapping {scope}[{i}].paths[{j}] ({op.operation} {p.key!r})"
            step = _compile_step(op.operation, p, label, names, scope == "context")
            (init if op.operation in _INIT_OPERATIONS else main).append(step)
    return init, main


def _run(steps: list[_Step], node: Any, variables: dict[str, Any]) -> Any:
    for step in steps:
        try:
            node = step.apply(node, variables)
        except RecursionError:
            raise TransformError(f"{step.label}: the document is nested too deeply") from None
    return node


# --------------------------------------------------------------------------- events


def _context_document(attributes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    for name, value in attributes.items():
        if name in CONTEXT_ATTRIBUTES:
            out[name] = value
        else:
            extensions[name] = value
    if extensions:
        out[_EXTENSIONS] = extensions
    return out


# extension names seen valid (and not reserved): the common case checks membership only
_GOOD_EXTENSIONS: set[str] = set()


def _attributes_from(document: Any, original: dict[str, Any] | None = None) -> dict[str, Any]:
    """The attributes the context document describes; :class:`TransformError` if invalid.

    ``original``: the input event's attributes (valid): a value that is still the very object
    it held under the same name needs no second check.
    """
    if not isinstance(document, dict):
        raise TransformError("mapping context: the operations left no attributes")
    attributes: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in document.items():
        if name == _EXTENSIONS:
            continue
        if name not in CONTEXT_ATTRIBUTES:
            problems.append(f"{name!r} is not a context attribute")
        elif value is None:
            continue
        elif isinstance(value, str):
            attributes[name] = value
        elif _is_scalar(value):
            attributes[name] = _json_text(value)  # a number or boolean becomes its JSON text
        else:
            problems.append(f"attribute {name!r} must be a string, got {_json_type(value)}")
    extensions = document.get(_EXTENSIONS)
    if extensions is not None and not isinstance(extensions, dict):
        problems.append(f"Extensions must be an object, got {_json_type(extensions)}")
    elif extensions:
        for name, value in extensions.items():
            if name not in _GOOD_EXTENSIONS and (not is_valid_extension_name(name) or name in _RESERVED):
                problems.append(f"invalid extension name {name!r} (lowercase letters and digits, at most 20)")
                continue
            if value is None:
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, (str, int, bool)):
                problems.append(
                    f"extension {name!r} must be a string, integer or boolean, got {_json_type(value)}"
                )
                continue
            attributes[name] = value
            if len(_GOOD_EXTENSIONS) < 4096:
                _GOOD_EXTENSIONS.add(name)
    for name in _REQUIRED:
        if not attributes.get(name):
            problems.append(f"required attribute {name!r} is missing or empty")
    if attributes.get("specversion") != "1.0":
        problems.append(f"specversion must be '1.0', got {attributes.get('specversion')!r}")
    if not problems and original is not None:
        # each value valid for its attribute (CloudEvents type system): the ones the
        # operations set or changed
        problems.extend(
            p
            for name, value in attributes.items()
            if original.get(name) is not value and (p := attribute_problem(name, value))
        )
    elif not problems and not attributes_valid(attributes):
        # the one-pass check says whether all are; this one says which are not
        problems.extend(p for name, value in attributes.items() if (p := attribute_problem(name, value)))
    if problems:
        raise TransformError("mapping context: " + "; ".join(problems))
    return attributes


def _is_json_content_type(ct: Any) -> bool:
    return ct is None or (isinstance(ct, str) and bool(_JSON_CT.match(ct)))


def _data_document(event: CloudEvent) -> Any:
    data = event.data
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            return orjson.loads(bytes(data))
        except orjson.JSONDecodeError:
            raise TransformError(
                "mapping data: the event's data is binary, not JSON; data operations need JSON"
            ) from None
    if isinstance(data, str) and not _is_json_content_type(event.attributes.get("datacontenttype")):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            ct = event.attributes.get("datacontenttype")
            raise TransformError(
                f"mapping data: the event's data is text ({ct}), not JSON; data operations need JSON"
            ) from None
    return data


def compile_mapping(config: MappingConfig) -> Callable[[CloudEvent], CloudEvent]:
    """A pure function applying ``config`` to an event; raises :class:`TransformError`."""
    stored = {p.key for op in (*config.context, *config.data) if op.operation == "store" for p in op.paths}
    names = sorted(stored, key=lambda n: (-len(n), n))
    context_init, context_main = _compile_scope("context", config.context, names)
    data_init, data_main = _compile_scope("data", config.data, names)
    has_context = bool(context_init or context_main)
    changes_context = bool(context_main) or any(s.operation != "store" for s in context_init)
    has_data = bool(data_init or data_main)
    changes_data = bool(data_main) or any(s.operation != "store" for s in data_init)

    def mapping(event: CloudEvent) -> CloudEvent:
        variables: dict[str, Any] = {}
        context = _context_document(event.attributes) if has_context else None
        data = _data_document(event) if has_data else None
        context = _run(context_init, context, variables)
        data = _run(data_init, data, variables)
        if changes_context:
            attributes = _attributes_from(_run(context_main, context, variables), event.attributes)
        else:
            attributes = dict(event.attributes)
        if not changes_data:
            return CloudEvent(attributes, event.data)
        data = _run(data_main, data, variables)
        if data is not None and not _is_json_content_type(attributes.get("datacontenttype")):
            attributes["datacontenttype"] = "application/json"
        return CloudEvent(attributes, data)

    return mapping
