"""TriggerMesh ``Filter`` expressions (CEL with ``$attribute`` / ``$data.path`` variables) → filters.

TriggerMesh's routing ``Filter`` takes a CEL expression over variables such as
``$type.(string)``, ``$source``, ``$data.order.total.(int64)`` or an extension
``$myext``. What this module converts:

- comparisons (``== != < <= > >=``) of variables and literals joined by ``&&``,
  ``||`` and parentheses → a ``jq`` filter over the event's JSON form;
- an expression that is only ``$attr == "literal"`` terms joined by ``&&`` →
  an ``exact`` filter (cheapest, and indexable by the router).

Anything else (function calls, macros, ``in``, negation, regular expressions)
raises :class:`Unsupported` with the reason, which the importer reports.
"""

from __future__ import annotations

import json
import re
from typing import Any

from meshline.importer.manifest import Fields, Unsupported

__all__ = [
    "Unsupported",
    "convert_expression",
    "dialect",
    "dialect_to_jq",
    "iso_duration",
    "python_filter",
    "trigger_filters",
]


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<var>\$[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?P<cast>\.\((?:string|int64|int|uint64|double|bool)\))?
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<bool>true|false)
    | (?P<op>&&|\|\||==|!=|<=|>=|<|>|\(|\))
    | (?P<other>\S+)
    )""",
    re.VERBOSE,
)
_CAST = re.compile(r"\.\((\w+)\)$")
_JQ_OPS = {"&&": "and", "||": "or"}


def _tokens(expr: str) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        kind = m.lastgroup if m.lastgroup != "cast" else "var"
        if m.group("var"):
            out.append(("var", m.group("var"), (m.group("cast") or "")[2:-1]))
        elif kind == "other":
            raise Unsupported(
                f"cannot convert {m.group('other')!r} (only comparisons, && and || are converted)"
            )
        else:
            assert kind is not None
            out.append((kind, m.group(kind), ""))
    return out


def _var_jq(name: str, cast: str) -> str:
    parts = name[1:].split(".")
    if parts[0] == "data":
        path = ".data" + "".join(f"[{json.dumps(p)}]" for p in parts[1:])
    elif len(parts) == 1:
        path = f".{parts[0]}"
    else:
        raise Unsupported(f"{name}: only $data has nested fields")
    if cast in ("int64", "int", "uint64", "double"):
        return f"({path} | tonumber)"
    if cast == "string":
        return f"({path} | tostring)"
    return path


def _literal(kind: str, text: str) -> Any:
    if kind == "str":
        if text.startswith("'"):
            return text[1:-1].replace("\\'", "'")
        return json.loads(text)
    if kind == "num":
        return json.loads(text)
    return text == "true"


def convert_expression(expr: str) -> dict[str, Any]:
    """One Meshline filter (``exact`` or ``jq``) equivalent to the TriggerMesh expression."""
    tokens = _tokens(expr)
    if not tokens:
        raise Unsupported("empty expression")
    exact = _as_exact(tokens)
    if exact is not None:
        return {"exact": exact}
    depth = 0
    parts: list[str] = []
    for kind, text, cast in tokens:
        if kind == "var":
            parts.append(_var_jq(text, cast))
        elif kind in ("str", "num", "bool"):
            parts.append(json.dumps(_literal(kind, text)))
        elif text == "(":
            depth += 1
            parts.append("(")
        elif text == ")":
            depth -= 1
            if depth < 0:
                raise Unsupported("unbalanced parentheses")
            parts.append(")")
        else:
            parts.append(_JQ_OPS.get(text, text))
    if depth != 0:
        raise Unsupported("unbalanced parentheses")
    return {"jq": " ".join(parts)}


def _as_exact(tokens: list[tuple[str, str, str]]) -> dict[str, str] | None:
    """``$a == "x" && $b == "y"`` on attributes → ``{a: x, b: y}``; else ``None``."""
    out: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        chunk = tokens[i : i + 3]
        if len(chunk) < 3:
            return None
        (k1, t1, c1), (_, op, _), (k3, t3, _) = chunk
        if k1 != "var" or op != "==" or k3 != "str" or t1.startswith("$data") or "." in t1[1:]:
            return None
        if c1 not in ("", "string"):
            return None
        out[t1[1:]] = _literal(k3, t3)
        i += 3
        if i < len(tokens):
            if tokens[i][1] != "&&":
                return None
            i += 1
    return out or None


def dialect_to_jq(f: dict[str, Any]) -> str:
    """A Subscriptions-API filter as a jq boolean expression (to run after a step)."""
    if len(f) != 1:
        raise Unsupported(f"a filter must have one dialect, got {sorted(f)}")
    ((dialect, value),) = f.items()
    if dialect in ("exact", "prefix", "suffix"):
        terms = []
        for attr, v in value.items():
            a = f".{attr}"
            if dialect == "exact":
                terms.append(f"({a} == {json.dumps(v)})")
            elif dialect == "prefix":
                terms.append(f'(({a} // "") | tostring | startswith({json.dumps(v)}))')
            else:
                terms.append(f'(({a} // "") | tostring | endswith({json.dumps(v)}))')
        return " and ".join(terms) or "true"
    if dialect == "all":
        return " and ".join(f"({dialect_to_jq(x)})" for x in value) or "true"
    if dialect == "any":
        return " or ".join(f"({dialect_to_jq(x)})" for x in value) or "false"
    if dialect == "not":
        return f"(({dialect_to_jq(value)}) | not)"
    if dialect == "jq":
        return f"({value})"
    raise Unsupported(f"a {dialect} filter after a transformation cannot be converted")


_ISO = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def iso_duration(text: str) -> str:
    """ISO-8601 duration (``PT0.2S``, ``PT1M``, ``P1DT2H``) → a Meshline duration (``200ms``, ``60s``)."""
    m = _ISO.match(text.strip().upper()) if isinstance(text, str) else None
    if m is None or not any(m.groupdict().values()):
        raise Unsupported(f"not an ISO-8601 duration: {text!r}")
    g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    seconds = g["d"] * 86400 + g["h"] * 3600 + g["m"] * 60 + g["s"]
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000)}ms"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:g}s"


# --------------------------------------------------------------------------- trigger filters


def trigger_filters(fields: Fields) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    attrs = fields.get("filter.attributes") or {}
    if not isinstance(attrs, dict):
        raise Unsupported("spec.filter.attributes: expected a mapping")
    exact = {str(k): str(v) for k, v in attrs.items() if v not in ("", None)}
    if exact:
        out.append({"exact": exact})
    filters = fields.get("filters") or []
    if not isinstance(filters, list):
        raise Unsupported("spec.filters: expected a list")
    for f in filters:
        out.append(dialect(f))
    return out


_DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")


def dialect(f: Any) -> dict[str, Any]:
    if not isinstance(f, dict) or len(f) != 1:
        raise Unsupported("a filter needs exactly one dialect")
    ((k, v),) = f.items()
    if k == "sql":
        k = "cesql"
    if k not in _DIALECTS:
        raise Unsupported(f"filter dialect {k!r}")
    if k in ("all", "any"):
        if not isinstance(v, list):
            raise Unsupported(f"{k}: expected a list of filters")
        return {k: [dialect(x) for x in v]}
    if k == "not":
        return {k: dialect(v)}
    if k == "cesql":
        return {k: str(v)}
    if not isinstance(v, dict):
        raise Unsupported(f"{k}: expected attribute: value pairs")
    return {k: {str(a): str(b) for a, b in v.items()}}


def python_filter(filters: list[dict[str, Any]]) -> str:
    """A python step that keeps the events matching ``filters`` (for CESQL, which jq cannot express)."""
    spec = filters[0] if len(filters) == 1 else {"all": filters}
    return (
        "from meshline.transforms.filters import FilterStats, compile_filter\n"
        f"_MATCH = compile_filter({spec!r})\n"
        "_STATS = FilterStats()\n\n\n"
        "def handle(event):\n"
        "    return event if _MATCH(event, _STATS) else None\n"
    )
