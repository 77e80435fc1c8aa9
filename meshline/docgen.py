"""``make docs``: the generated sections of the reference pages, from the schemas and the CLI parser.

Every registered connector id has a page ``docs/reference/connectors/ID.md`` (one page for
the source and the target of that id) and every transformation id a page
``docs/reference/transformations/ID.md``. A page is hand-written prose around generated
sections, each between two markers::

    <!-- BEGIN GENERATED: source kafka; do not edit, run `make docs` -->
    … the config keys of the kafka source: key, type, default or "required", description,
    the field marks (secret: ``writeOnly`` and ``x-secret`` in the schema; path: ``x-path``),
    the same data ``meshline connectors kafka`` prints
    <!-- END GENERATED -->

The generator rewrites what is between the markers and keeps everything else. A page
that does not exist yet is created with a title and its sections; a section missing from
an existing page is appended to it. Two more kinds of section, usable in any page under
``docs/``:

- ``cli``: every ``meshline`` command with its arguments and flags, from
  :func:`meshline.cli._parser` (in ``docs/cli.md``);
- ``include PATH``: the file ``PATH`` of the repository as a code block (the tutorial
  shows ``pipelines/tutorial-orders.yaml`` this way).

``python -m meshline.docgen`` writes the pages; ``--check`` writes nothing and exits 1
naming every stale page (``tests/unit/test_docs.py`` runs the same check). Output is
deterministic: running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Result", "generate", "main", "render_cli", "render_component"]

ROOT = Path(__file__).resolve().parent.parent
DOCS = "docs"
CONNECTORS = "docs/reference/connectors"
TRANSFORMATIONS = "docs/reference/transformations"
CLI_PAGE = "docs/cli.md"

END = "<!-- END GENERATED -->"
_BLOCK = re.compile(
    r"<!-- BEGIN GENERATED: (?P<key>[^;>]+?)\s*(?:;[^>]*)?-->\n(?P<body>.*?)" + re.escape(END),
    re.DOTALL,
)
# the heading put before a section a page does not place itself
_HEADINGS = {
    "source": "Source configuration",
    "target": "Target configuration",
    "transformation": "Configuration",
    "cli": "Commands",
}
_SECTIONS = {"source": "sources", "target": "targets", "transformation": "transformations"}
_DURATION_UNITS = (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0))


def begin(key: str) -> str:
    return f"<!-- BEGIN GENERATED: {key}; do not edit, run `make docs` -->"


# --------------------------------------------------------------------------- components


def _duration_text(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    for unit, size in _DURATION_UNITS:
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    ms = seconds * 1000
    return f"{int(ms)}ms" if ms.is_integer() else f"{seconds:g}s"


def _is_duration(schema: dict[str, Any]) -> bool:
    branches = schema.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2:
        return False
    kinds = sorted(str(b.get("type")) for b in branches)
    return kinds == ["number", "string"] and any("pattern" in b for b in branches)


def _type_text(schema: dict[str, Any]) -> str:
    """A JSON Schema (as :func:`meshline.config.config_schema` writes them) in words."""
    if _is_duration(schema):
        return "duration"
    if "enum" in schema:
        return " \\| ".join(
            f"`{json.dumps(v)}`" if not isinstance(v, str) else f"`{v}`" for v in schema["enum"]
        )
    if "anyOf" in schema:
        return " or ".join(_type_text(s) for s in schema["anyOf"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items") or {}
        if "properties" in items:
            return "list of mappings"
        return f"list of {_plural(_type_text(items))}" if items else "list"
    if kind == "object":
        if "properties" in schema:
            return "mapping"
        values = schema.get("additionalProperties")
        if isinstance(values, dict) and values:
            return f"mapping of string to {_type_text(values)}"
        return "mapping"
    names = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
    if isinstance(kind, str):
        return names.get(kind, kind)
    return "any"


def _plural(text: str) -> str:
    return " or ".join(
        f"{t}s" if t in ("string", "integer", "number", "boolean") else t for t in text.split(" or ")
    )


def _default_text(schema: dict[str, Any]) -> str:
    value = schema["default"]
    if _is_duration(schema) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"`{_duration_text(float(value))}`"
    if value == "":
        return '`""`'
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value, sort_keys=True)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _rows(schema: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, dict[str, Any], bool]]:
    """``(dotted key, property schema, required)`` for every key, nested configs flattened."""
    required = set(schema.get("required", ()))
    for key, prop in schema.get("properties", {}).items():
        name = f"{prefix}{key}"
        yield name, prop, key in required
        items = prop.get("items") if prop.get("type") == "array" else None
        if isinstance(items, dict) and "properties" in items:
            yield from _rows(items, f"{name}[].")
        elif prop.get("type") == "object" and "properties" in prop:
            yield from _rows(prop, f"{name}.")


# How a field marked secret is shown (``meshline.config.doc(..., secret=...)``): a whole value
# (``writeOnly``), the password inside a URL, or the entries of a mapping named like credentials.
_SECRET_MARKS = {
    "url": "**Secret:** the password of `user:password@` in it.",
    "keys": "**Secret:** entries named like credentials (`Authorization`, `sasl.password`).",
}


def render_component(component: Any) -> str:
    """The generated section of one component: what ``meshline connectors ID`` prints, as a table."""
    schema = component.schema()
    section = _SECTIONS[component.kind]
    lines = [
        f"`type: {component.id}` in `spec.{section}`: {_cell(component.description)}",
        f"`meshline connectors {component.id}` prints the same keys.",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    secrets = False
    for key, prop, required in _rows(schema):
        description = _cell(prop.get("description", ""))
        mark = (
            _SECRET_MARKS.get(str(prop.get("x-secret")), "**Secret.**")
            if prop.get("writeOnly") is True
            else None
        )
        if prop.get("x-path") is True:
            description += "; relative to the integration file's directory"
        if mark:
            secrets = True
            description = " ".join([description, mark]).strip()
        if required:
            default = "**required**"
        elif "default" in prop:
            default = _default_text(prop)
        else:
            default = "—"
        lines.append(f"| `{key}` | {_type_text(prop)} | {default} | {description} |")
    if secrets:
        lines += [
            "",
            "**Secret** values are never shown (logs, errors, `meshline graph`, dead letters): give them as",
            "`${params.NAME}` of a `secret: true` parameter ([secrets](../../integration-file.md#secrets)).",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- CLI


def _metavar(action: argparse.Action) -> str:
    if action.metavar:
        return str(action.metavar)
    if action.choices and not action.option_strings:
        return str(action.dest).upper()
    if action.choices:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return str(action.dest).upper()


def _synopsis(name: str, parser: argparse.ArgumentParser) -> str:
    parts = [f"meshline {name}"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            shown = _metavar(action)
            if action.choices:
                shown = "|".join(str(c) for c in action.choices)
            parts.append(f"{shown}…" if action.nargs in ("+", "*") else shown)
            if action.nargs == "?":
                parts[-1] = f"[{parts[-1]}]"
            continue
        flag = max(action.option_strings, key=len)
        text = flag if action.nargs == 0 else f"{flag} {_metavar(action)}"
        if isinstance(action, argparse._AppendAction):
            text += " …"
        parts.append(text if action.required else f"[{text}]")
    return " ".join(parts)


def _argument_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            name = ", ".join(f"`{s}`" for s in action.option_strings)
            if action.nargs != 0:
                name += f" `{_metavar(action)}`"
        else:
            name = f"`{_metavar(action)}`"
        notes = [_cell(action.help or "")]
        if action.choices and not action.option_strings:  # options show theirs in braces
            notes.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
        if isinstance(action, argparse._AppendAction):
            notes.append("repeatable")
        if action.required and action.option_strings:
            notes.append("required")
        if (
            action.option_strings
            and action.default not in (None, False, [], argparse.SUPPRESS)
            and "default" not in (action.help or "")
        ):
            notes.append(f"default `{action.default}`")
        if not action.option_strings and action.nargs in ("+", "*"):
            notes.append("one or more")
        rows.append(f"| {name} | {'; '.join(n for n in notes if n) or '—'} |")
    return rows


def render_cli() -> str:
    """Every ``meshline`` command: synopsis, what it does, each argument (from the parser)."""
    from meshline.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    lines: list[str] = []
    for name, command in sub.choices.items():
        summary = _cell(helps.get(name) or "")
        lines += [f"### `meshline {name}`", "", f"{summary[:1].upper()}{summary[1:]}.", ""]
        lines += ["```", _synopsis(name, command), "```", ""]
        rows = _argument_rows(command)
        if rows:
            lines += ["| argument | meaning |", "|---|---|", *rows, ""]
        if command.epilog:
            lines += [_cell(command.epilog), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- pages


@dataclass
class Result:
    """New contents of the pages the generator owns, and problems it cannot fix itself."""

    pages: dict[Path, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def stale(self, root: Path) -> list[str]:
        """Pages whose text on disk differs from what ``make docs`` writes."""
        out = []
        for path, text in sorted(self.pages.items()):
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current != text:
                state = "missing" if current is None else "stale"
                out.append(f"{path.relative_to(root)}: {state}")
        return out


def _fill(text: str, sections: dict[str, str], where: Path, problems: list[str]) -> str:
    """``text`` with every known section's body replaced; unknown keys are problems."""

    def replace(match: re.Match[str]) -> str:
        key = " ".join(match.group("key").split())
        if key not in sections:
            problems.append(f"{where}: a generated section {key!r} that nothing generates: remove it")
            return match.group(0)
        return f"{begin(key)}\n{sections[key]}{END}"

    return _BLOCK.sub(replace, text)


def _append_missing(text: str, keys: list[tuple[str, str]]) -> str:
    """A component page with each of its sections that the prose does not place appended."""
    present = {" ".join(m.group("key").split()) for m in _BLOCK.finditer(text)}
    for key, body in keys:
        if key not in present:
            heading = f"## {_HEADINGS[key.split()[0]]}"
            text = text.rstrip("\n") + f"\n\n{heading}\n\n{begin(key)}\n{body}{END}\n"
    return text


def _components() -> dict[str, list[Any]]:
    from meshline import registry

    out: dict[str, list[Any]] = {}
    for kind in ("source", "target", "transformation"):
        for type_id in registry.ids(kind):  # type: ignore[arg-type]
            component = registry.lookup(kind, type_id)  # type: ignore[arg-type]
            if component is not None:
                out.setdefault(kind, []).append(component)
    return out


def _includes(root: Path, text: str, where: Path, problems: list[str]) -> dict[str, str]:
    sections: dict[str, str] = {}
    for match in _BLOCK.finditer(text):
        key = " ".join(match.group("key").split())
        if not key.startswith("include "):
            continue
        name = key.removeprefix("include ").strip()
        target = (root / name).resolve()
        if root.resolve() not in target.parents or not target.is_file():
            problems.append(f"{where}: include {name!r}: no such file in the repository")
            continue
        language = {".yaml": "yaml", ".yml": "yaml", ".py": "python", ".json": "json"}.get(target.suffix, "")
        body = target.read_text(encoding="utf-8")
        sections[key] = f"```{language}\n{body.rstrip()}\n```\n"
    return sections


def generate(root: Path = ROOT) -> Result:
    """What every generated page should hold (nothing is written)."""
    result = Result()
    components = _components()
    # page -> (title, first paragraph of a new page, its component sections)
    owned: dict[Path, tuple[str, str, list[tuple[str, str]]]] = {}
    by_id: dict[str, list[Any]] = {}
    for kind in ("source", "target"):
        for c in components.get(kind, []):
            by_id.setdefault(c.id, []).append(c)
    for type_id, found in sorted(by_id.items()):
        kinds = " and ".join(c.kind for c in found)
        keys = [(f"{c.kind} {c.id}", render_component(c)) for c in found]
        owned[root / CONNECTORS / f"{type_id}.md"] = (f"`{type_id}` {kinds}", found[0].description, keys)
    for c in components.get("transformation", []):
        keys = [(f"transformation {c.id}", render_component(c))]
        owned[root / TRANSFORMATIONS / f"{c.id}.md"] = (f"`{c.id}` transformation", c.description, keys)
    for folder in (CONNECTORS, TRANSFORMATIONS):
        for path in sorted((root / folder).glob("*.md")):
            if path not in owned:
                result.problems.append(
                    f"{path.relative_to(root)}: no registered id {path.stem!r}: remove the page or its id"
                )
    cli = render_cli()
    for path in sorted(set((root / DOCS).rglob("*.md")) | set(owned)):
        where = path.relative_to(root)
        if path.exists():
            text = path.read_text(encoding="utf-8")
        else:
            title, intro, _ = owned[path]
            text = f"# {title}\n\n{intro}\n"
        sections = _includes(root, text, where, result.problems)
        if path in owned:
            sections.update(owned[path][2])
        if path == root / CLI_PAGE:
            sections["cli"] = cli
        if not sections and not _BLOCK.search(text):
            continue
        text = _fill(text, sections, where, result.problems)
        if path in owned:
            text = _append_missing(text, owned[path][2])
        if path == root / CLI_PAGE:
            text = _append_missing(text, [("cli", cli)])
        result.pages[path] = text
    result.problems = sorted(set(result.problems))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m meshline.docgen", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when a page is stale")
    p.add_argument("--root", default=str(ROOT), help="the repository root")
    args = p.parse_args(argv)
    root = Path(args.root)
    result = generate(root)
    for problem in result.problems:
        print(f"docgen: {problem}", file=sys.stderr)
    stale = result.stale(root)
    if args.check:
        for line in stale:
            print(f"docgen: {line} (run `make docs`)", file=sys.stderr)
        return 1 if stale or result.problems else 0
    for path, text in sorted(result.pages.items()):
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(root)}")
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
