"""Phase 2: substitute ``${params.NAME}`` and ``${env.NAME}`` in every string value.

- References may appear anywhere in a string, several per string; ``$${`` is a
  literal ``${``. A string that is exactly one reference takes the value itself,
  so a typed parameter default (``default: 5``) stays a number; values given on the
  command line and environment variables are strings.
- Parameters are declared in ``spec.parameters`` (``name``, ``description``,
  ``required``, ``default``, ``secret``); a value given by the caller wins over the
  default. An optional parameter with neither is the empty string. The
  ``spec.parameters`` section itself may use ``${env.NAME}`` (e.g. in a default),
  not ``${params.NAME}``.
- ``strict=True`` (run, test): a required parameter without a value and an unset
  environment variable are errors — one per name, at its first reference.
  ``strict=False`` (validate): they are warnings and the reference text stays in
  place as a placeholder. Either way the paths holding a placeholder are returned
  so later phases do not report the placeholder itself as a mistake.
- Secret values are collected for the :class:`~meshline.spec.redact.Redactor`:
  every value of a ``secret: true`` parameter and every substituted value that
  lands in a config key whose name looks secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshline.spec.findings import Finding, Path, suggest
from meshline.spec.redact import is_secret_key

__all__ = ["Interpolated", "declared_parameters", "interpolate"]

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)(\}?)")
_REF = re.compile(r"^\s*(params|env)\.([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*$")
_PARAMETERS: Path = ("spec", "parameters")
_MISSING: Any = object()


@dataclass
class Interpolated:
    """The result of interpolation: new data plus what was learned on the way."""

    data: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    placeholders: set[Path] = field(default_factory=set)
    declared: list[str] = field(default_factory=list)

    def under_placeholder(self, path: Path) -> bool:
        """Whether ``path`` is (inside) a value that holds a placeholder."""
        return any(path[: len(p)] == p for p in self.placeholders)


def declared_parameters(data: Any) -> list[tuple[int, dict[str, Any]]]:
    """``(index, declaration)`` of each well-formed entry of ``spec.parameters`` (others are skipped)."""
    spec = data.get("spec") if isinstance(data, dict) else None
    params = spec.get("parameters") if isinstance(spec, dict) else None
    if not isinstance(params, list):
        return []
    return [(i, p) for i, p in enumerate(params) if isinstance(p, dict) and isinstance(p.get("name"), str)]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _last_key(path: Path) -> str | None:
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return None


class _Interpolator:
    def __init__(self, env: Mapping[str, str], strict: bool):
        self.env = env
        self.strict = strict
        self.values: dict[str, Any] = {}
        self.required: set[str] = set()
        self.declared: list[str] = []
        self.findings: list[Finding] = []
        self.secrets: set[str] = set()
        self.placeholders: set[Path] = set()
        self.reported: set[tuple[str, str]] = set()

    def missing(self, scope: str, name: str, path: Path, message: str, placeholder: bool = True) -> None:
        if placeholder:
            self.placeholders.add(path)
        if (scope, name) in self.reported:
            return
        self.reported.add((scope, name))
        if self.strict:
            self.findings.append(Finding(path, message))
        else:
            self.findings.append(Finding(path, f"{message}; checked with a placeholder", "warning"))

    def resolve(self, scope: str, name: str, ref: str, path: Path, params_allowed: bool) -> Any:
        if scope == "env":
            if name in self.env:
                return self.env[name]
            self.missing("env", name, path, f"environment variable {name!r} is not set (referenced as {ref})")
            return ref
        if not params_allowed:
            self.findings.append(Finding(path, f"a parameter cannot refer to another parameter ({ref})"))
            self.placeholders.add(path)
            return ref
        if name not in self.values:
            if self.declared:
                known = ", ".join(sorted(self.declared))
                hint = f"{suggest(name, self.declared)} (declared parameters: {known})"
            else:
                hint = " (no parameters are declared; add it to spec.parameters)"
            self.findings.append(Finding(path, f"unknown parameter {name!r} in {ref}{hint}"))
            self.placeholders.add(path)
            return ref
        value = self.values[name]
        if value is _MISSING:
            self.missing(
                "params",
                name,
                path,
                f"missing value for required parameter {name!r} (pass --param {name}=VALUE)",
            )
            return ref
        return value

    def substitute(self, text: str, path: Path, params_allowed: bool) -> Any:
        if "${" not in text:
            return text
        matches = list(_TOKEN.finditer(text))
        whole = len(matches) == 1 and matches[0].span() == (0, len(text))
        pieces: list[str] = []
        last = 0
        for match in matches:
            pieces.append(text[last : match.start()])
            last = match.end()
            token = match.group(0)
            if token == "$${":
                pieces.append("${")
                continue
            if not match.group(2):
                self.findings.append(
                    Finding(
                        path, f"unterminated reference {token!r}: expected ${{params.NAME}} or ${{env.NAME}}"
                    )
                )
                self.placeholders.add(path)
                pieces.append(token)
                continue
            ref = _REF.match(match.group(1))
            if ref is None:
                self.findings.append(
                    Finding(
                        path,
                        f"invalid reference {token!r}: expected ${{params.NAME}} or ${{env.NAME}} "
                        "(write $${ for a literal ${)",
                    )
                )
                self.placeholders.add(path)
                pieces.append(token)
                continue
            scope, name = ref.groups()
            value = self.resolve(scope, name, token, path, params_allowed)
            if value is not token and is_secret_key(_last_key(path)):
                self.secrets.add(_text(value))
            if whole:
                return value
            pieces.append(_text(value))
        pieces.append(text[last:])
        return "".join(pieces)

    def walk(self, value: Any, path: Path, params_allowed: bool) -> Any:
        if isinstance(value, str):
            return self.substitute(value, path, params_allowed)
        if isinstance(value, dict):
            return {k: self.walk(v, (*path, k), params_allowed) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, (*path, i), params_allowed) for i, v in enumerate(value)]
        return value


def interpolate(
    data: dict[str, Any],
    *,
    params: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    strict: bool = True,
) -> Interpolated:
    """Substitute references in ``data`` (not modified); see the module docstring for the rules.

    ``env=None`` means the process environment.
    """
    params = dict(params or {})
    work = _Interpolator(os.environ if env is None else env, strict)
    out: dict[str, Any] = dict(data)
    spec = data.get("spec")
    if isinstance(spec, dict) and "parameters" in spec:
        section = work.walk(spec["parameters"], _PARAMETERS, params_allowed=False)
        out["spec"] = {**spec, "parameters": section}
    for _index, decl in declared_parameters(out):
        name = decl["name"]
        work.declared.append(name)
        if name in params:
            value = params[name]
        elif decl.get("default") is not None:
            value = decl["default"]
        elif decl.get("required") is True:
            value = _MISSING
            work.required.add(name)
        else:
            value = ""
        work.values[name] = value
        if decl.get("secret") is True and value is not _MISSING:
            work.secrets.add(_text(value))
    for key, value in out.items():
        if key == "spec" and isinstance(value, dict):
            out["spec"] = {
                k: v if k == "parameters" else work.walk(v, ("spec", k), params_allowed=True)
                for k, v in value.items()
            }
        else:
            out[key] = work.walk(value, (key,), params_allowed=True)
    for index, decl in declared_parameters(out):
        name = decl["name"]
        if work.values.get(name) is _MISSING and ("params", name) not in work.reported:
            work.missing(
                "params",
                name,
                (*_PARAMETERS, index),
                f"missing value for required parameter {name!r} (pass --param {name}=VALUE)",
                placeholder=False,
            )
    work.secrets.discard("")
    return Interpolated(out, work.findings, work.secrets, work.placeholders, work.declared)
