"""Rewrite the ``expect:`` lists of test cases in an integration file's text (``meshline test --update``).

Only the text of each rewritten list changes: from just after its key's colon to
the end of its last item. Comments, blank lines, quoting and the layout of the
rest of the file stay byte for byte. A block list is written back as a block
list (one flow mapping per event, ``- {id: '1', data: {…}}``), a flow list (``[]``)
inside a block mapping becomes a block list when it gets events, and a list
inside a flow mapping stays a flow list. The result is parsed again and every
rewritten list compared with what was asked for; if anything differs the
rewrite is refused (:class:`RewriteError`), so a file is never left broken.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["ABSENT", "Absent", "ExpectUpdate", "RewriteError", "flow", "rewrite_expectations"]

#: Width a rewritten event may take before it continues on the next line.
LINE_WIDTH = 100


class Absent:
    """A field one side of a difference does not have (printed ``(absent)``)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = Absent()


_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+\-]*( [A-Za-z0-9_./@+\-]+)*")
_RESOLVER = yaml.resolver.Resolver()


def _text(s: str) -> str:
    """A string as YAML: plain when it reads back as the same string, else JSON-quoted (double quotes)."""
    if (
        _PLAIN.fullmatch(s)
        and _RESOLVER.resolve(yaml.ScalarNode, s, (True, False)) == "tag:yaml.org,2002:str"
    ):
        return s
    return json.dumps(s, ensure_ascii=False)


def _scalar(value: Any) -> str:
    if isinstance(value, Absent):
        return "(absent)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[repr(value)]
        text = repr(value)
        return text.replace("e", ".0e") if "e" in text and "." not in text else text  # YAML 1.1 needs the dot
    return _text(str(value))


def flow(value: Any) -> str:
    """``value`` as one line of YAML in flow style: ``{id: "1", data: {total: 150.5}}``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_text(str(k))}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return _scalar(value)


def flow_lines(value: Any, width: int) -> list[str]:
    """:func:`flow` of a mapping, its entries wrapped at ``width`` (continuations one column in)."""
    one = flow(value)
    if len(one) <= width or not isinstance(value, dict) or len(value) < 2:
        return [one]
    entries = [f"{_text(str(k))}: {flow(v)}" for k, v in value.items()]
    lines: list[str] = []
    current = "{" + entries[0]
    for entry in entries[1:]:
        if len(current) + 2 + len(entry) + 1 > width:
            lines.append(current + ",")
            current = " " + entry
        else:
            current += ", " + entry
    lines.append(current + "}")
    return lines


class RewriteError(Exception):
    """The expectations could not be rewritten safely; the file was not changed."""


@dataclass(frozen=True)
class ExpectUpdate:
    """New events for one target of one test case (the integration named, the case by position)."""

    integration: str
    case: int
    target: str
    events: list[dict[str, Any]]


def _get(node: Node, key: str) -> tuple[ScalarNode, Node] | None:
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return k, v
    return None


def _tight_end(node: Node) -> int:
    """Where ``node``'s own text ends (a block collection's end mark lies after the next comments)."""
    if isinstance(node, SequenceNode) and not node.flow_style and node.value:
        return _tight_end(node.value[-1])
    if isinstance(node, MappingNode) and not node.flow_style and node.value:
        return _tight_end(node.value[-1][1])
    return node.end_mark.index


def _document_of(roots: list[Node], name: str) -> Node | None:
    for root in roots:
        metadata = _get(root, "metadata")
        found = _get(metadata[1], "name") if metadata else None
        if found and isinstance(found[1], ScalarNode) and found[1].value == name:
            return root
    return None


def _replacement(events: list[dict[str, Any]], column: int, in_flow: bool, newline: str) -> str:
    if not events or in_flow:
        return " " + flow(events)
    indent = " " * column
    lines = []
    for event in events:
        first, *rest = flow_lines(event, max(40, LINE_WIDTH - column - 2))
        lines.append(f"{indent}- {first}")
        lines.extend(f"{indent}  {line}" for line in rest)
    return newline + newline.join(lines)


def _span(text: str, key: ScalarNode, value: Node, parent: MappingNode) -> tuple[int, int, int, bool]:
    """(start, end, column of the items, inside flow) of the text to replace for ``key: value``."""
    colon = text.index(":", key.end_mark.index)
    end = _tight_end(value)
    while end > colon + 1 and text[end - 1] in " \t\r\n":
        end -= 1
    # inside a flow mapping ({out: [...]}) only a flow list is possible
    return colon + 1, end, key.start_mark.column + 2, bool(parent.flow_style)


def rewrite_expectations(text: str, updates: Sequence[ExpectUpdate], file: str = "<string>") -> str:
    """``text`` with the ``expect`` lists of ``updates`` replaced; raise :class:`RewriteError`."""
    try:
        roots = [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None]
    except yaml.YAMLError as e:
        raise RewriteError(f"{file}: cannot parse the file again: {e}") from None
    edits: list[tuple[int, int, str]] = []
    newline = "\r\n" if "\r\n" in text else "\n"
    for u in updates:
        where = f"{file}: {u.integration}: test {u.case + 1}, target {u.target}"
        root = _document_of(roots, u.integration)
        spec = _get(root, "spec") if root is not None else None
        tests = _get(spec[1], "tests") if spec else None
        if tests is None or not isinstance(tests[1], SequenceNode) or u.case >= len(tests[1].value):
            raise RewriteError(f"{where}: the test case is not in the file")
        case = tests[1].value[u.case]
        expect = _get(case, "expect")
        found = _get(expect[1], u.target) if expect else None
        if expect is None or found is None or not isinstance(expect[1], MappingNode):
            raise RewriteError(f"{where}: the case does not list this target under expect")
        key, value = found
        if not (case.start_mark.index <= value.start_mark.index <= case.end_mark.index):
            raise RewriteError(f"{where}: the expectation comes from a YAML alias; update it by hand")
        start, end, column, in_flow = _span(text, key, value, expect[1])
        edits.append((start, end, _replacement(u.events, column, in_flow, newline)))
    edits.sort()
    for (_, end_a, _), (start_b, _, _) in itertools.pairwise(edits):
        if start_b < end_a:
            raise RewriteError(f"{file}: two updates overlap (the same target twice?)")
    out = text
    for start, end, new in reversed(edits):
        out = out[:start] + new + out[end:]
    _verify(out, updates, file)
    return out


def _verify(text: str, updates: Sequence[ExpectUpdate], file: str) -> None:
    """Parse the new text the way the loader does; every rewritten list must read back as asked."""
    from meshline.spec.yamlload import parse_yaml

    documents, problems = parse_yaml(text, file)
    if problems:
        raise RewriteError(f"{file}: the rewritten file would not load: {problems[0]}")
    by_name = {
        d.data.get("metadata", {}).get("name"): d.data
        for d in documents
        if isinstance(d.data.get("metadata"), dict)
    }
    for u in updates:
        try:
            got = by_name[u.integration]["spec"]["tests"][u.case]["expect"][u.target]
        except (KeyError, IndexError, TypeError):
            got = None
        if got != u.events:
            raise RewriteError(
                f"{file}: {u.integration}: test {u.case + 1}, target {u.target}: the rewritten list "
                "would not read back as written; the file was not changed"
            )
