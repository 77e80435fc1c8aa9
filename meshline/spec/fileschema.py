"""The JSON Schema of the file *as written*, for editors (``meshline schema``).

:func:`~meshline.spec.schema.integration_schema` describes a document after
``${params.NAME}`` / ``${env.NAME}`` placeholders were substituted: that is what
Meshline checks. An editor sees the file before substitution, where
``idle_timeout: ${params.idle}`` is a string in a place that wants a duration,
a number or one of a few words. :func:`file_schema` therefore lets every value
that would refuse such a string also be a string holding a placeholder;
everything else (keys, required keys, types of objects and lists, the values
written out) is checked exactly as Meshline checks it.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PLACEHOLDER", "file_schema"]

#: A string that holds at least one ``${params.NAME}`` or ``${env.NAME}``.
PLACEHOLDER: dict[str, Any] = {
    "type": "string",
    "pattern": r"\$\{(params|env)\.[^}]+\}",
    "description": "a ${params.NAME} or ${env.NAME} placeholder, substituted when the file is loaded",
}

_SCALARS = {"string", "integer", "number", "boolean", "null"}
_STRING_LIMITS = ("pattern", "format", "minLength", "maxLength", "enum", "const")
_CHILDREN = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def _types(node: dict[str, Any]) -> set[str] | None:
    t = node.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else set(t)


def _scalar(node: Any) -> bool:
    """Whether ``node`` only ever accepts scalars (then a placeholder may stand in for it)."""
    if not isinstance(node, dict):
        return False
    types = _types(node)
    if types is not None:
        return types <= _SCALARS
    if "enum" in node or "const" in node:
        return True
    branches = node.get("anyOf") or node.get("oneOf") or []
    return bool(branches) and all(_scalar(b) for b in branches)


def _takes_any_string(node: dict[str, Any]) -> bool:
    types = _types(node)
    return types is not None and "string" in types and not any(k in node for k in _STRING_LIMITS)


def _allow(node: Any) -> Any:
    if isinstance(node, list):
        return [_allow(n) for n in node]
    if not isinstance(node, dict):
        return node
    if _scalar(node):
        if _takes_any_string(node):
            return node
        return {"anyOf": [node, {"$ref": "#/$defs/placeholder"}]}
    out = dict(node)
    for key in _CHILDREN:
        if isinstance(out.get(key), dict):
            out[key] = {k: _allow(v) for k, v in out[key].items()}
    for key in ("items", "additionalProperties", "then", "else", "contains"):
        if isinstance(out.get(key), (dict, list)):
            out[key] = _allow(out[key])
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(out.get(key), list):
            out[key] = [_allow(n) for n in out[key]]
    # "if" and "not" stay as they are: a placeholder must not switch a condition
    return out


def file_schema(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """``schema`` (default: the integration schema) with placeholders allowed wherever a scalar goes."""
    if schema is None:
        from meshline.spec.schema import integration_schema

        schema = integration_schema()
    if "placeholder" in schema.get("$defs", {}):
        return schema  # it accepts placeholders already: it describes the file as written
    out = _allow(copy.deepcopy(schema))
    out.setdefault("$defs", {})["placeholder"] = dict(PLACEHOLDER)
    return out
