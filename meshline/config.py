"""Typed component configs: frozen keyword-only dataclasses → JSON Schema and parsing.

Every connector and transformation declares its config as a frozen, keyword-only
dataclass whose fields carry ``field(metadata={"doc": ...})``. From that one
declaration Meshline derives the JSON Schema (``meshline connectors ID``,
``meshline schema``, editor completion) and the parser that turns the YAML
mapping into the dataclass, reporting every problem with its key.

Supported field types: ``str``, ``int``, ``float``, ``bool``, ``Duration``,
``list[T]``, ``dict[str, T]``, ``Any``, ``Literal[...]``, ``X | None`` and
nested config dataclasses.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import types
import typing
from typing import Any, Literal, TypeVar, get_args, get_origin

from meshline.errors import ConfigError

__all__ = ["Duration", "config_schema", "doc", "parse_config", "parse_duration"]

T = TypeVar("T")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class Duration(float):
    """Seconds, written in YAML as ``200ms``, ``30s``, ``5m``, ``1h`` or a number of seconds."""


def parse_duration(value: Any) -> Duration:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 200ms, 30s or 5m, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"expected a non-negative duration, got {value!r}")
        return Duration(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return Duration(float(m.group(1)) * _UNITS[m.group(2)])
    raise ValueError(f"expected a duration like 200ms, 30s or 5m, got {value!r}")


def doc(description: str, default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A dataclass field with a description (and optionally a default)."""
    metadata = {"doc": description}
    metadata.update(kw.pop("metadata", {}))
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata, **kw)
    if isinstance(default, (list, dict, set)):
        factory = functools.partial(copy.copy, default)
        return dataclasses.field(default_factory=factory, metadata=metadata, **kw)
    return dataclasses.field(default=default, metadata=metadata, **kw)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = get_origin(tp)
    if tp is Any:
        return {}
    if tp is Duration:
        return {
            "anyOf": [
                {"type": "string", "pattern": _DURATION.pattern},
                {"type": "number", "minimum": 0},
            ],
            "description": "a duration: 200ms, 30s, 5m, 1h",
        }
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (list, tuple):
        args = get_args(tp)
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if origin is dict:
        args = get_args(tp)
        return {"type": "object", "additionalProperties": _type_schema(args[1]) if args else {}}
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return _type_schema(members[0])
        return {"anyOf": [_type_schema(a) for a in members]}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return config_schema(tp)
    raise TypeError(f"unsupported config field type {tp!r}")


def config_schema(cls: type) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a config dataclass."""
    hints = _hints(cls)
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        s = dict(_type_schema(hints[f.name]))
        if f.metadata.get("doc"):
            s["description"] = f.metadata["doc"]
        if f.metadata.get("secret"):
            s["writeOnly"] = True
        if f.default is not dataclasses.MISSING:
            if f.default is not None:
                s["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            s["default"] = f.default_factory()
        else:
            required.append(f.name)
        props[f.name] = s
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split())
    return schema


def _from_text(tp: Any, text: str) -> Any:
    """``"9000"`` → 9000, ``"0.5"`` → 0.5, ``"true"`` → True; anything else unchanged."""
    t = text.strip()
    if tp is bool:
        return {"true": True, "false": False}.get(t.lower(), text)
    try:
        return int(t) if tp is int else float(t)
    except ValueError:
        return text


def _coerce(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errors: list[str] = []
        for a in non_none:
            attempt: list[str] = []
            out = _coerce(a, value, path, attempt)
            if not attempt:
                return out
            errors.extend(attempt)
        problems.append(errors[0] if len(non_none) == 1 else f"{path}: unexpected value {value!r}")
        return None
    if tp is Duration:
        try:
            return parse_duration(value)
        except ValueError as e:
            problems.append(f"{path}: {e}")
            return None
    if isinstance(value, str) and tp in (bool, int, float):
        # ``--param port=9000`` and ``${env.X}`` give strings: read them as the field's type.
        value = _from_text(tp, value)
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a number, got {value!r}")
            return value
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {value!r}")
        return value
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            problems.append(f"{path}: expected one of {choices}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {value!r}")
            return value
        (item_tp,) = get_args(tp)[:1] or (Any,)
        return [_coerce(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {value!r}")
            return value
        args = get_args(tp)
        val_tp = args[1] if args else Any
        return {k: _coerce(val_tp, v, f"{path}.{k}", problems) for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {value!r}")
            return None
        return _build(tp, value, path + ".", problems)
    raise TypeError(f"unsupported config field type {tp!r}")


def _build(cls: type[T], config: dict[str, Any], prefix: str, problems: list[str]) -> T | None:
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in config:
        if key not in fields:
            known = ", ".join(sorted(fields))
            problems.append(f"{prefix}{key}: unknown key (expected one of: {known})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        path = f"{prefix}{name}"
        if name in config:
            kwargs[name] = _coerce(hints[name], config[name], path, problems)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(f"{path}: required key is missing")
    if problems:
        return None
    try:
        return cls(**kwargs)
    except (ValueError, ConfigError) as e:
        problems.append(f"{prefix.rstrip('.') or 'config'}: {e}")
        return None


def parse_config(cls: type[T], config: dict[str, Any] | None, *, where: str = "config") -> T:
    """Build ``cls`` from a YAML mapping; raise :class:`ConfigError` listing every problem.

    Each problem is ``KEY: what was expected, got what``; the dataclass's own
    ``__post_init__`` may raise ``ValueError``/``ConfigError`` for cross-field rules.
    """
    problems: list[str] = []
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: expected a mapping, got {config!r}")
    result = _build(cls, config, "", problems)
    if problems or result is None:
        raise ConfigError("\n".join(problems))
    return result


def config_problems(cls: type, config: Any) -> list[tuple[str, str]]:
    """Every problem as ``(dotted key, message)`` for located reporting; empty when valid."""
    try:
        parse_config(cls, config)
    except ConfigError as e:
        out = []
        for line in str(e).splitlines():
            key, _, msg = line.partition(": ")
            out.append((key, msg) if msg else ("", line))
        return out
    return []
