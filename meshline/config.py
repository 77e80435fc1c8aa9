"""Typed component configs: frozen keyword-only dataclasses → JSON Schema and parsing.

Every connector and transformation declares its config as a frozen, keyword-only
dataclass whose fields carry ``field(metadata={"doc": ...})``. From that one
declaration Meshline derives the JSON Schema (``meshline connectors ID``,
``meshline schema``, editor completion) and the parser that turns the YAML
mapping into the dataclass, reporting every problem with its key.

A field holding a credential is marked on its declaration, once: ``doc(...,
secret=True)`` (the value is a credential), ``secret="url"`` (URLs that may
carry ``user:password@``: the password is the secret) or ``secret="keys"`` (a
free-form mapping, e.g. HTTP headers or librdkafka properties, where an entry
whose key names a credential — ``password``, ``token``, ``authorization``… — is
one). Everything else derives from that mark: the JSON Schema (``writeOnly``, and
``x-secret: url|keys`` for the part), interpolation (a :class:`meshline.secrets.Secret`
for the field's value), the ``repr`` of declarations (:func:`masked`) and of the config
dataclass itself (:func:`mask_repr`, installed by the registry), the problems
:func:`parse_config` reports (a number given as a password is not quoted), graphs and the
reference pages (``make docs``). The only guess from a name is inside ``secret="keys"``
mappings, which have no fields to mark (:func:`is_secret_key`).

A field that may hold a local path is marked ``doc(..., path=True)``: the loader
resolves it against the integration file's directory when it is relative
(:func:`path_fields`, :mod:`meshline.spec.paths`).

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
from collections.abc import Sequence
from typing import Any, Literal, TypeVar, get_args, get_origin

from meshline.errors import ConfigError, ConfigProblem
from meshline.secrets import MASK, Secret, mask_url, url_password

__all__ = [
    "Duration",
    "SecretMark",
    "config_problems",
    "config_schema",
    "doc",
    "field_mark",
    "is_secret_key",
    "mask_repr",
    "masked",
    "parse_config",
    "parse_duration",
    "path_fields",
    "read_config",
    "secret_marks",
]

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


SecretMark = Literal[True, "url", "keys"]
_MARKS = (True, "url", "keys")


def doc(
    description: str,
    default: Any = dataclasses.MISSING,
    *,
    secret: SecretMark | None = None,
    path: bool = False,
    **kw: Any,
) -> Any:
    """A dataclass field with a description, optionally a default and marks (module docstring).

    ``path=True``: the value may be a local path, which the loader resolves against the
    integration file's directory when it is relative (:mod:`meshline.spec.paths`).
    """
    metadata: dict[str, Any] = {"doc": description}
    metadata.update(kw.pop("metadata", {}))
    if secret is not None:
        metadata["secret"] = secret
    if path:
        metadata["path"] = True
    if metadata.get("secret") not in (None, False, *_MARKS):
        raise TypeError(f"secret: expected True, 'url' or 'keys', got {metadata['secret']!r}")
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata, **kw)
    if isinstance(default, (list, dict, set)):
        factory = functools.partial(copy.copy, default)
        return dataclasses.field(default_factory=factory, metadata=metadata, **kw)
    return dataclasses.field(default=default, metadata=metadata, **kw)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# Only inside a field marked secret="keys" (free-form mappings): entry names that hold credentials.
_SECRET_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "passphrase",
    "connection_string",
    "connectionstring",
    "private_key",
    "privatekey",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "account_key",
    "signature",
    "authorization",
    "cookie",
)


def is_secret_key(name: object) -> bool:
    """Whether an entry of a ``secret="keys"`` mapping holds a credential, by its name.

    The only place Meshline guesses from a name: free-form mappings (HTTP headers,
    librdkafka properties such as ``sasl.password``) have no declared fields.
    """
    if not isinstance(name, str):
        return False
    lowered = name.lower().replace("-", "_")
    return lowered in ("key", "sas", "x_api_key") or any(
        p.replace("-", "_") in lowered for p in _SECRET_PARTS
    )


@functools.cache
def secret_marks(cls: type) -> dict[str, SecretMark]:
    """The secret marks of a config dataclass: ``{field: mark}``, nested dataclasses as ``a.b``."""
    out: dict[str, SecretMark] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        mark = f.metadata.get("secret")
        if mark:
            out[f.name] = mark
            continue
        for inner in _dataclasses_in(hints[f.name]):
            for name, m in secret_marks(inner).items():
                out[f"{f.name}.{name}"] = m
    return out


@functools.cache
def path_fields(cls: type) -> tuple[str, ...]:
    """The fields of a config dataclass marked ``path=True`` (nested dataclasses as ``a.b``)."""
    out: list[str] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("path"):
            out.append(f.name)
        for inner in _dataclasses_in(hints[f.name]):
            out.extend(f"{f.name}.{name}" for name in path_fields(inner))
    return tuple(out)


def _dataclasses_in(tp: Any) -> list[type]:
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return [tp]
    return [c for a in get_args(tp) for c in _dataclasses_in(a)]


def field_mark(cls: type, path: Sequence[str | int]) -> SecretMark | None:
    """The mark of the value at ``path`` inside a config of ``cls`` (list indexes are skipped).

    ``True`` for a value inside a field marked ``secret=True`` or for an entry of a
    ``secret="keys"`` mapping whose name holds a credential; ``"url"`` inside a
    ``secret="url"`` field; ``None`` otherwise.
    """
    marks = secret_marks(cls)
    keys = [p for p in path if isinstance(p, str)]
    for i in range(len(keys), 0, -1):
        mark = marks.get(".".join(keys[:i]))
        if mark is None:
            continue
        if mark == "keys":
            return True if any(is_secret_key(k) for k in keys[i:]) else None
        return mark
    return None


def masked(cls: type, value: Any, path: Sequence[str | int] = ()) -> Any:
    """A copy of ``value`` (a config mapping of ``cls``, or the value at ``path`` inside one) with
    every part the field marks call secret as ``***``: a value under ``secret=True`` whole, the
    password of a URL under ``secret="url"``, an entry of a ``secret="keys"`` mapping named like a
    credential; a :class:`~meshline.secrets.Secret` anywhere shows masked."""
    mark = field_mark(cls, path) if path else None
    if mark is True and value not in (None, "", [], {}):
        return MASK
    if isinstance(value, dict):
        return {k: masked(cls, v, (*path, k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(masked(cls, v, (*path, i)) for i, v in enumerate(value))
    if isinstance(value, Secret):
        return value.shown()
    if mark == "url" and isinstance(value, str):
        return mask_url(value)
    return value


def _masked_repr(self: Any) -> str:
    cls = type(self)
    shown = ", ".join(
        f"{f.name}={masked(cls, getattr(self, f.name), (f.name,))!r}"
        for f in dataclasses.fields(cls)
        if f.repr
    )
    return f"{cls.__qualname__}({shown})"


def mask_repr(cls: type) -> None:
    """Give the config dataclass ``cls`` (and the dataclasses nested in it) a ``repr`` that masks
    its secret-marked fields (:func:`masked`), whatever their values, plain strings included.

    :class:`meshline.registry.Component` calls it for its config class, so no declaration repeats
    what its marks say.
    """
    for f in dataclasses.fields(cls):
        for inner in _dataclasses_in(_hints(cls)[f.name]):
            mask_repr(inner)
    if secret_marks(cls) and cls.__repr__ is not _masked_repr:
        cls.__repr__ = _masked_repr  # type: ignore[method-assign,assignment]


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
        mark = f.metadata.get("secret")
        if mark:
            s["writeOnly"] = True  # never shown back (OpenAPI's meaning); x-secret says which part
            if mark is not True:
                s["x-secret"] = mark  # "url": the password of user:password@; "keys": entries by name
        if f.metadata.get("path"):
            s["x-path"] = True  # a relative path is read from the integration file's directory
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


Problems = list[ConfigProblem]
KeyPath = tuple[str | int, ...]


def _invalid(path: KeyPath, message: str) -> ConfigProblem:
    return ConfigProblem(path, "invalid", message)


def _coerce(tp: Any, value: Any, path: KeyPath, problems: Problems) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errors: Problems = []
        for a in non_none:
            attempt: Problems = []
            out = _coerce(a, value, path, attempt)
            if not attempt:
                return out
            errors.extend(attempt)
        problems.append(errors[0] if len(non_none) == 1 else _invalid(path, f"unexpected value {value!r}"))
        return None
    if tp is Duration:
        try:
            return parse_duration(value)
        except ValueError as e:
            problems.append(_invalid(path, str(e)))
            return None
    if isinstance(value, str) and tp in (bool, int, float):
        # ``--param port=9000`` and ``${env.X}`` give strings: read them as the field's type.
        value = _from_text(tp, value)
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(_invalid(path, f"expected true or false, got {value!r}"))
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(_invalid(path, f"expected an integer, got {value!r}"))
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(_invalid(path, f"expected a number, got {value!r}"))
            return value
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            problems.append(_invalid(path, f"expected a string, got {value!r}"))
        return value
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            problems.append(_invalid(path, f"expected one of {choices}, got {value!r}"))
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            problems.append(_invalid(path, f"expected a list, got {value!r}"))
            return value
        (item_tp,) = get_args(tp)[:1] or (Any,)
        return [_coerce(item_tp, v, (*path, i), problems) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(_invalid(path, f"expected a mapping, got {value!r}"))
            return value
        args = get_args(tp)
        val_tp = args[1] if args else Any
        return {k: _coerce(val_tp, v, (*path, str(k)), problems) for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            problems.append(_invalid(path, f"expected a mapping, got {value!r}"))
            return None
        return _build(tp, value, path, problems)
    raise TypeError(f"unsupported config field type {tp!r}")


def _build(cls: type[T], config: dict[str, Any], prefix: KeyPath, problems: Problems) -> T | None:
    hints = _hints(cls)  # type: ignore[arg-type]
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    known = tuple(sorted(fields))
    for key in config:
        if key not in fields:
            message = f"unknown key (expected one of: {', '.join(known)})"
            problems.append(ConfigProblem((*prefix, key), "unknown-key", message, known))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in config:
            kwargs[name] = _coerce(hints[name], config[name], (*prefix, name), problems)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(ConfigProblem((*prefix, name), "missing-key", "required key is missing"))
    if problems:
        return None
    try:
        return cls(**kwargs)
    except (ValueError, ConfigError) as e:
        problems.append(_rule_problem(prefix, str(e), fields))
        return None


def _secret_texts(cls: type, value: Any, path: tuple[str | int, ...] = ()) -> set[str]:
    """The secret values inside a config mapping of ``cls``, as written, by the field marks."""
    if isinstance(value, dict):
        return {t for k, v in value.items() for t in _secret_texts(cls, v, (*path, k))}
    if isinstance(value, list):
        return {t for i, v in enumerate(value) for t in _secret_texts(cls, v, (*path, i))}
    if value is None or isinstance(value, bool) or not path:
        return set()
    mark = field_mark(cls, path)
    text = str.__str__(value) if isinstance(value, str) else str(value)
    if mark is True and text.strip():
        return {text}
    if mark == "url" and isinstance(value, str):
        password = url_password(text)
        return {password} if password else set()
    return set()


def _hide_secrets(cls: type, config: dict[str, Any], problems: list[ConfigProblem]) -> list[ConfigProblem]:
    """``problems`` without secrets: the value a problem at a secret-marked key quotes (``password:
    expected a string, got 12345``), every secret value of the config a rule quotes (of 4
    characters or more: shorter ones would mask words, not secrets) and every URL password."""
    if not problems:
        return problems
    texts = sorted((t for t in _secret_texts(cls, config) if len(t) >= 4), key=lambda t: (-len(t), t))
    out = []
    for problem in problems:
        message = problem.message
        head, got, _ = message.partition(", got ")
        if got and field_mark(cls, list(problem.path)) is True:
            message = f"{head}, got {MASK}"
        for text in texts:
            message = message.replace(text, MASK)
        if "@" in message:
            message = mask_url(message)
        out.append(problem if message == problem.message else dataclasses.replace(problem, message=message))
    return out


def _rule_problem(prefix: KeyPath, message: str, fields: dict[str, Any]) -> ConfigProblem:
    """A cross-field rule's message (``__post_init__``), addressed to the key it names first.

    ``"url: must start with amqp://"`` is about ``url``: reported at that key, a value
    still holding a placeholder is not judged by it (``meshline validate`` drops
    problems under placeholders). Any other message stays at the config.
    """
    head, sep, rest = message.partition(": ")
    if sep and head in fields:
        return ConfigProblem((*prefix, head), "rule", rest)
    return ConfigProblem(prefix, "rule", message)


def read_config(cls: type[T], config: Any) -> tuple[T | None, list[ConfigProblem]]:
    """``cls`` built from a YAML mapping and every problem found (``None`` when there is one).

    The one place a component's config is parsed: :func:`parse_config` and
    :func:`config_problems` are its two faces, and the loader calls it once per
    component (:mod:`meshline.spec.resolve` keeps the result).
    """
    if config is None:
        config = {}
    if not isinstance(config, dict):
        return None, [_invalid((), f"expected a mapping, got {config!r}")]
    problems: Problems = []
    result = _build(cls, config, (), problems)
    if problems or result is None:
        return None, _hide_secrets(cls, config, problems)
    return result, []


def parse_config(cls: type[T], config: dict[str, Any] | None, *, where: str = "config") -> T:
    """Build ``cls`` from a YAML mapping; raise :class:`ConfigError` listing every problem.

    Each problem is ``KEY: what was expected, got what`` (``ConfigError.problems`` has them
    as :class:`~meshline.errors.ConfigProblem`); the dataclass's own ``__post_init__`` may
    raise ``ValueError``/``ConfigError`` for cross-field rules. ``where`` names the config
    when it is not a mapping at all.
    """
    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"{where}: expected a mapping, got {config!r}")
    result, problems = read_config(cls, config)
    if result is None:
        raise ConfigError(problems)
    return result


def config_problems(cls: type, config: Any) -> list[ConfigProblem]:
    """Every problem of ``config`` for ``cls``, each with its key path and kind; empty when valid."""
    return read_config(cls, config)[1]
