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
- Secrets (see :mod:`meshline.secrets`): a string becomes a
  :class:`~meshline.secrets.Secret` — whose pickled form holds references, never
  the value — when it substitutes a ``secret: true`` parameter, when it is the
  value of a config field marked ``secret`` (then its ``${env.NAME}``
  references and text written in the file are secret too), or when it is a URL
  with a ``user:password@`` in a field marked ``secret="url"``. The values go
  to the process's secret store (for local runners' workers) and to the
  :class:`~meshline.spec.redact.Redactor`. A secret parameter whose value is a
  Secret Manager secret version is read with ``secret_manager`` when given,
  else it keeps a stand-in value here and workers read it (Dataflow).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshline import secrets
from meshline.config import SecretMark, field_mark
from meshline.secrets import DEFERRED, SECRET_VERSION, Secret
from meshline.spec.findings import Finding, Path, suggest

__all__ = ["Interpolated", "declared_parameters", "interpolate"]

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)(\}?)")
_REF = re.compile(r"^\s*(params|env)\.([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*$")
_PARAMETERS: Path = ("spec", "parameters")
_MISSING: Any = object()
_SECTIONS = {"sources": "source", "targets": "target", "transformations": "transformation"}
_LITERAL = re.compile("\x00(\\d+)\x00")


@dataclass
class Interpolated:
    """The result of interpolation: new data plus what was learned on the way."""

    data: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    placeholders: set[Path] = field(default_factory=set)
    declared: list[str] = field(default_factory=list)
    # secret reference (params.X, env.X, literal.WHERE) -> how its value was given:
    # "value", "secretmanager", "env" (an environment variable) or "literal" (written in the file)
    references: dict[str, str] = field(default_factory=dict)
    scope: str = ""
    # values that start with what the caller gave (a --param value, an environment variable)
    # rather than with text written in the file: relative paths there are the caller's
    from_caller: set[Path] = field(default_factory=set)

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


def _ref(name: str) -> str:
    return "${" + name + "}"


def _escape(text: str) -> str:
    return text.replace("${", "$${")


def _where(path: Path) -> str:
    """``targets.search.config.password``-like, for a secret written in the file (no braces)."""
    return ".".join(str(p) for p in path[1:]).replace("{", "(").replace("}", ")")


class _Marks:
    """The secret mark of a config value by its path (from the component's config dataclass)."""

    def __init__(self, data: Any):
        spec = data.get("spec") if isinstance(data, dict) else None
        self.spec = spec if isinstance(spec, dict) else {}
        self.classes: dict[tuple[Any, Any], type | None] = {}

    def _config_class(self, section: Any, index: Any) -> type | None:
        key = (section, index)
        if key not in self.classes:
            cls = None
            items = self.spec.get(section)
            item = items[index] if isinstance(items, list) and isinstance(index, int) else None
            type_id = item.get("type") if isinstance(item, dict) else None
            if isinstance(type_id, str):
                from meshline import registry

                try:
                    component = registry.lookup(_SECTIONS[section], type_id)  # type: ignore[arg-type]
                except Exception:  # a connector that does not import: the schema check says so
                    component = None
                cls = component.config if component is not None else None
            self.classes[key] = cls
        return self.classes[key]

    def __call__(self, path: Path) -> SecretMark | None:
        if len(path) < 5 or path[0] != "spec" or path[1] not in _SECTIONS or path[3] != "config":
            return None
        cls = self._config_class(path[1], path[2])
        return field_mark(cls, path[4:]) if cls is not None else None


class _Interpolator:
    def __init__(
        self,
        env: Mapping[str, str],
        strict: bool,
        scope: str,
        marks: Callable[[Path], SecretMark | None],
    ):
        self.env = env
        self.strict = strict
        self.scope = scope
        self.marks = marks
        self.secret_params: set[str] = set()
        self.locators: dict[str, str] = {}
        self.references: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.required: set[str] = set()
        self.declared: list[str] = []
        self.findings: list[Finding] = []
        self.secrets: set[str] = set()
        self.placeholders: set[Path] = set()
        self.reported: set[tuple[str, str]] = set()
        self.caller_params: set[str] = set()  # parameters whose value the caller gave
        self.from_caller: set[Path] = set()

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
        mark = self.marks(path) if params_allowed else None
        literals: list[str] = []
        if mark == "url":
            # a password written in the file inside a URL: a secret without a name
            def hide(m: re.Match[str]) -> str:
                if "${" in m.group(2):
                    return m.group(0)
                literals.append(m.group(2))
                return f"{m.group(1)}\x00{len(literals) - 1}\x00@"

            text = secrets._URL_PASSWORD.sub(hide, text)
        if "${" not in text and not literals:
            if mark is True and text.strip():
                ref_name = f"literal.{_where(path)}"
                return self.secret(text, _ref(ref_name), {ref_name: text}, {text}, whole=True)
            return text
        matches = list(_TOKEN.finditer(text))
        whole = len(matches) == 1 and matches[0].span() == (0, len(text))
        # pieces: ("text", s) or ("ref", scope, name, value, resolved)
        pieces: list[tuple[Any, ...]] = []
        last = 0
        for match in matches:
            pieces.append(("text", text[last : match.start()]))
            last = match.end()
            token = match.group(0)
            if token == "$${":
                pieces.append(("text", "${"))
                continue
            if not match.group(2):
                self.findings.append(
                    Finding(
                        path, f"unterminated reference {token!r}: expected ${{params.NAME}} or ${{env.NAME}}"
                    )
                )
                self.placeholders.add(path)
                pieces.append(("text", token))
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
                pieces.append(("text", token))
                continue
            scope, name = ref.groups()
            value = self.resolve(scope, name, token, path, params_allowed)
            pieces.append(("ref", scope, name, value, value is not token))
        pieces.append(("text", text[last:]))
        self._note_origin(pieces, path)
        # the value, and where each piece lands in it
        spans: list[tuple[int, int]] = []
        chunks: list[str] = []
        at = 0
        for p in pieces:
            chunk = _LITERAL.sub(lambda m: literals[int(m.group(1))], p[1] if p[0] == "text" else _text(p[3]))
            chunks.append(chunk)
            spans.append((at, at + len(chunk)))
            at += len(chunk)
        plain = "".join(chunks)
        refs = [i for i, p in enumerate(pieces) if p[0] == "ref" and p[4]]
        redact: set[str] = set(literals)
        if mark is True:
            secret_refs = set(refs)
        else:
            secret_refs = {i for i in refs if pieces[i][1] == "params" and pieces[i][2] in self.secret_params}
            if mark == "url":
                for m in secrets._URL_PASSWORD.finditer(plain):
                    lo, hi = m.span(2)
                    secret_refs |= {i for i in refs if spans[i][0] < hi and spans[i][1] > lo}
                    redact.add(m.group(2))
        redact |= {_text(pieces[i][3]) for i in secret_refs if mark is True or pieces[i][1] == "params"}
        if whole and not literals and pieces[1][0] == "ref":
            value = pieces[1][3]
            if not secret_refs or not isinstance(value, str):
                self.secrets.update(r for r in redact if r.strip())
                return value
        if not secret_refs and not literals:
            return plain
        template: list[str] = []
        values: dict[str, str] = {}
        for i, p in enumerate(pieces):
            if p[0] == "text":
                for j, part in enumerate(_LITERAL.split(p[1])):
                    if j % 2 == 0:
                        template.append(_escape(part))
                    else:
                        ref_name = f"literal.{_where(path)}.{part}"
                        template.append(_ref(ref_name))
                        values[ref_name] = literals[int(part)]
            elif i in secret_refs:
                ref_name = f"{p[1]}.{p[2]}"
                template.append(_ref(ref_name))
                values[ref_name] = _text(p[3])
            else:
                template.append(_escape(_text(p[3])))
        return self.secret(plain, "".join(template), values, redact, whole=mark is True)

    def _note_origin(self, pieces: list[tuple[Any, ...]], path: Path) -> None:
        """Remember ``path`` when its value starts with a value the caller gave (``from_caller``)."""
        for p in pieces:
            if p[0] == "text":
                if p[1]:
                    return  # starts with text written in the file
                continue
            if not p[4] or _text(p[3]) == "":
                continue  # unresolved, or empty: look further
            if p[1] == "env" or p[2] in self.caller_params:
                self.from_caller.add(path)
            return

    def secret(
        self, value: str, template: str, values: Mapping[str, str], redact: set[str], whole: bool = False
    ) -> Secret:
        """A :class:`Secret` for ``value``; its references' values go to the store, ``redact`` to the
        redactor."""
        for ref, v in values.items():
            if ref.startswith("literal."):
                self.references[ref] = "literal"
            elif ref.startswith("env."):
                self.references[ref] = "env"
            else:
                how = self.locators.get(ref, "")
                self.references[ref] = "secretmanager" if how.startswith("secretmanager:") else "value"
            secrets.store(self.scope, ref, v)
        redact = {r for r in redact if r.strip()}
        self.secrets |= redact
        secrets.remember(*redact)
        locators = {ref: self.locators[ref] for ref in values if ref in self.locators}
        return Secret(value, template, scope=self.scope, locators=locators, whole=whole)

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
    scope: str | None = None,
    secret_manager: Callable[[str], str] | None = None,
) -> Interpolated:
    """Substitute references in ``data`` (not modified); see the module docstring for the rules.

    ``env=None`` means the process environment. ``scope`` names this document's
    values in the process's secret store (default: a new unique name).
    ``secret_manager(NAME)`` reads a Secret Manager secret version; without it
    such a secret parameter gets a stand-in value and workers read it.
    """
    params = dict(params or {})
    scope = scope or uuid.uuid4().hex[:16]
    work = _Interpolator(os.environ if env is None else env, strict, scope, _Marks(data))
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
            work.caller_params.add(name)
        elif decl.get("default") is not None:
            value = decl["default"]
            if (*_PARAMETERS, _index, "default") in work.from_caller:  # default: ${env.X}…
                work.caller_params.add(name)
        elif decl.get("required") is True:
            value = _MISSING
            work.required.add(name)
        else:
            value = ""
        if decl.get("secret") is True:
            work.secret_params.add(name)
            raw = _raw_default(data, _index)
            if name not in params and isinstance(raw, str) and _ENV_ONLY.match(raw):
                work.locators[f"params.{name}"] = "env:" + _ENV_ONLY.match(raw).group(1)  # type: ignore[union-attr]
            if isinstance(value, str) and SECRET_VERSION.fullmatch(value.strip()):
                work.locators[f"params.{name}"] = "secretmanager:" + value.strip()
                value = secret_manager(value.strip()) if secret_manager is not None else DEFERRED
            if value is not _MISSING:
                work.secrets.add(_text(value))
        work.values[name] = value
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
    work.secrets.discard(DEFERRED)
    return Interpolated(
        out,
        work.findings,
        work.secrets,
        work.placeholders,
        work.declared,
        work.references,
        scope,
        {p for p in work.from_caller if p[:2] != _PARAMETERS},
    )


_ENV_ONLY = re.compile(r"^\s*\$\{\s*env\.([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*\}\s*$")


def _raw_default(data: Any, index: int) -> Any:
    """The ``default`` of parameter ``index`` as written (before interpolation)."""
    for i, decl in declared_parameters(data):
        if i == index:
            return decl.get("default")
    return None
