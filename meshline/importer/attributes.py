"""What the importer knows about event attributes at a point of a path.

A path from a source collects attribute values every event on it has: from the
``exact`` filters it passed and from the steps it ran (a Bumblebee ``add`` of a
constant ``type``, TriggerMesh's XSLT appending ``.response``…). With them the
importer decides, before anything runs, that a trigger on a broker cannot take an
event (``com.example.order.audit`` never matches ``exact: {type: …placed}``) or
surely takes it, so reply paths through a broker keep only the triggers that can
match, and only the filters that still depend on the event are checked at run time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from meshline.attributes import CONTEXT_ATTRIBUTES

__all__ = [
    "Known",
    "effect",
    "keeps",
    "known_attributes",
    "rename_type",
    "response_type",
    "static_match",
]

Known = dict[str, str]  # attribute values every event at this point of a path has


def static_match(f: dict[str, Any], known: Mapping[str, str]) -> bool | None:
    """Whether filter ``f`` matches an event whose attributes include ``known``.

    ``True``/``False`` when the known attributes decide it, ``None`` when it depends on
    the event (an attribute not known, a ``cesql`` or ``jq`` filter).
    """
    if not isinstance(f, dict) or len(f) != 1:
        return None
    ((dialect, value),) = f.items()
    if dialect in ("exact", "prefix", "suffix") and isinstance(value, dict):
        result: bool | None = True
        for attr, want in value.items():
            have = known.get(str(attr))
            if have is None:
                result = None
            elif not (
                have == str(want)
                if dialect == "exact"
                else have.startswith(str(want))
                if dialect == "prefix"
                else have.endswith(str(want))
            ):
                return False
        return result
    if dialect in ("all", "any") and isinstance(value, list):
        results = [static_match(x, known) for x in value]
        decisive = dialect == "any"  # any: one True decides; all: one False decides
        if decisive in results:
            return decisive
        return (not decisive) if all(r is not None for r in results) else None
    if dialect == "not":
        r = static_match(value, known)
        return None if r is None else not r
    return None


def known_attributes(filters: list[dict[str, Any]]) -> dict[str, str]:
    """Attribute values every event that passes ``filters`` has (from ``exact``, also inside ``all``)."""
    out: dict[str, str] = {}
    for f in filters:
        if not isinstance(f, dict) or len(f) != 1:
            continue
        ((dialect, value),) = f.items()
        if dialect == "exact" and isinstance(value, dict):
            out.update({str(k): str(v) for k, v in value.items()})
        elif dialect == "all" and isinstance(value, list):
            out.update(known_attributes(value))
    return out


def rename_type(f: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """``f`` with an exact match of ``type`` on ``old`` (also inside all/any/not and CESQL) made ``new``."""
    ((dialect, value),) = f.items()
    if dialect == "exact" and value.get("type") == old:
        return {dialect: {**value, "type": new}}
    if dialect in ("all", "any"):
        return {dialect: [rename_type(x, old, new) for x in value]}
    if dialect == "not":
        return {dialect: rename_type(value, old, new)}
    if dialect == "cesql":
        return {dialect: value.replace(f"'{old}'", f"'{new}'").replace(f'"{old}"', f'"{new}"')}
    if dialect == "jq":
        return {dialect: value.replace(json.dumps(old), json.dumps(new))}
    return f


def keeps(known: Known) -> Known:
    return known


def response_type(known: Known) -> Known:
    out = dict(known)
    if "type" in out:
        out["type"] += ".response"
    return out


def _attribute(key: Any, separator: Any) -> str | None:
    if not isinstance(key, str) or separator not in (None, "."):
        return None
    if key in CONTEXT_ATTRIBUTES:
        return key
    head, _, rest = key.partition(".")
    if head.lower() == "extensions" and rest and "." not in rest:
        return rest
    return None


def effect(type_id: str, config: dict[str, Any]) -> Callable[[Known], Known]:
    """What a step does to the attribute values known before it."""
    if type_id != "mapping":

        def keeps_attributes(known: Known) -> Known:
            return {k: v for k, v in known.items() if k != "datacontenttype"}

        return keeps_attributes
    ops = list(config.get("context") or [])
    stored = [
        str(p.get("key") or "")
        for op in [*ops, *(config.get("data") or [])]
        if op["operation"] == "store"
        for p in op["paths"]
    ]

    def mapping(known: Known) -> Known:
        out = {k: v for k, v in known.items() if k != "datacontenttype"}
        for op in ops:
            if op["operation"] in ("store", "parse"):
                continue
            for p in op["paths"]:
                shift = op["operation"] == "shift"
                keys = str(p.get("key") or "").split(":") if shift else [p.get("key")]
                attrs = [_attribute(k, p.get("separator")) for k in keys]
                if None in attrs:
                    out.clear()  # a path we cannot follow: know nothing
                    continue
                value = p.get("value")
                for attr in attrs:
                    assert attr is not None
                    if op["operation"] == "add" and isinstance(value, (str, int, float, bool)):
                        text = value if isinstance(value, str) else json.dumps(value)
                        if not any(s and s in text for s in stored):
                            out[attr] = text
                            continue
                    out.pop(attr, None)
        return out

    return mapping
