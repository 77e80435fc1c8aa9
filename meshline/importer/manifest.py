"""Reading one TriggerMesh/Knative manifest for the importer, and what conversion adds.

- :class:`Fields` hands a manifest's ``spec`` to a converter and remembers every path
  it read; :meth:`Fields.unused` names the rest, so a field no converter knows about
  is reported (``spec.eventOptions.payloadPolicy: not carried …``), never dropped
  silently.
- :class:`Context` collects what conversion adds besides components: parameters,
  notes and problems (one line each, prefixed with the manifest they are about).
  A secret (a ``valueFromSecret``/``secretKeyRef`` reference, or a secret written
  inline as ``{value: …}`` or a plain string) becomes a required ``secret: true``
  parameter: its value is never copied into the output nor printed.
- :func:`dns_label` and :func:`param_name` make names Meshline accepts; a label
  longer than 63 characters keeps a readable prefix and ends with a stable hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Context",
    "Fields",
    "Unsupported",
    "dns_label",
    "go_duration",
    "config_problems",
    "has_param",
    "param_name",
    "ref_name",
    "unique",
]


class Unsupported(Exception):
    """Something the importer cannot convert; the message says why (never a secret value)."""


_LABEL_MAX = 63


def dns_label(text: str, limit: int = _LABEL_MAX) -> str:
    """``text`` as a lowercase DNS label of at most ``limit`` characters.

    Characters other than ``a-z0-9-`` become ``-``. A longer label keeps its first
    characters and ends with ``-`` and 8 hex digits of the SHA-256 of the whole label,
    so the same input always gives the same name and different inputs stay apart.
    """
    label = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", text.lower())).strip("-") or "x"
    if len(label) <= limit:
        return label
    digest = hashlib.sha256(label.encode()).hexdigest()[:8]
    return f"{label[: limit - 9].rstrip('-')}-{digest}"


def unique(base: str, taken: Iterable[str]) -> str:
    """``base`` (a DNS label), or ``base-2``, ``base-3``… (each fitted to 63 characters) if taken."""
    used = set(taken)
    name = dns_label(base)
    n = 2
    while name in used:
        name = dns_label(f"{base}-{n}")
        n += 1
    return name


def param_name(text: str) -> str:
    """A parameter name (letters, digits, ``_``; no leading digit) from ``text``."""
    name = re.sub(r"_{2,}", "_", re.sub(r"[^a-z0-9_]+", "_", text.lower())).strip("_") or "param"
    return f"p_{name}" if name[0].isdigit() else name


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def go_duration(text: Any) -> str:
    """A Go duration (``30m``, ``1h30m``, ``1.5s``, ``500ms``) as a Meshline duration (``1800s``)."""
    s = str(text).strip()
    parts = _GO_PART.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise Unsupported(f"not a duration like 30s, 5m or 1h30m: {s!r}")
    seconds = sum(float(n) * _GO_UNITS[u] for n, u in parts)
    if 0 < seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds:g}s"


@dataclass
class Context:
    """Parameters, notes and problems of one import.

    ``where`` names the manifest being converted (``FILE: Kind/name``); it prefixes
    every note and problem and owns the parameters declared meanwhile, so that
    :meth:`forget` can take back everything a component added when the component
    ends up unused.
    """

    parameters: list[dict[str, Any]] = field(default_factory=list)
    secret_values: set[str] = field(default_factory=set)  # inline secrets: never in the output
    where: str = ""
    _notes: list[tuple[str, str]] = field(default_factory=list)
    _problems: list[tuple[str, str]] = field(default_factory=list)
    _origins: dict[str, str] = field(default_factory=dict)
    _owners: dict[str, set[str]] = field(default_factory=dict)

    def note(self, text: str) -> None:
        if (self.where, text) not in self._notes:
            self._notes.append((self.where, text))

    def problem(self, text: str) -> None:
        if (self.where, text) not in self._problems:
            self._problems.append((self.where, text))

    @property
    def notes(self) -> list[tuple[str, str]]:
        return list(self._notes)

    @property
    def problems(self) -> list[tuple[str, str]]:
        return list(self._problems)

    def forget(self, owners: set[str]) -> None:
        """Drop the notes, problems and parameters that only these components added."""
        self._notes = [n for n in self._notes if n[0] not in owners]
        self._problems = [p for p in self._problems if p[0] not in owners]
        gone = {name for name, who in self._owners.items() if who and who <= owners}
        self.parameters = [p for p in self.parameters if p["name"] not in gone]

    def param(
        self,
        name: str,
        description: str,
        *,
        default: Any = None,
        secret: bool = False,
        origin: str | None = None,
    ) -> str:
        """Declare a parameter (once per origin) and return its reference, ``${params.NAME}``.

        Two declarations with the same origin share one parameter (one Secret key used
        by two components); different origins that would share a name get ``_2``, ``_3``….
        """
        base = param_name(name)
        origin = origin or f"{base}:{description}"
        name, n = base, 2
        while name in self._origins and self._origins[name] != origin:
            name, n = f"{base}_{n}", n + 1
        if name not in self._origins:
            self._origins[name] = origin
            p: dict[str, Any] = {"name": name, "description": description}
            if default is None:
                p["required"] = True
            else:
                p["default"] = default
            if secret:
                p["secret"] = True
            self.parameters.append(p)
        self._owners.setdefault(name, set()).add(self.where)
        return f"${{params.{name}}}"

    def origins(self) -> dict[str, str]:
        """``parameter name → origin`` (``secret:NAME/KEY``, ``inline:Kind/name/path``, …)."""
        return dict(self._origins)


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, (dict, list)) and not value)


class Fields:
    """A manifest's ``spec`` as a converter reads it; every path read counts as carried.

    Paths are dotted (``auth.tls.ca``), relative to ``spec``. :meth:`get` marks the
    path and everything under it as used, so read leaves (or subtrees carried as a
    whole); :meth:`peek` reads without marking.
    """

    def __init__(self, doc: dict[str, Any], ctx: Context):
        self.doc = doc
        spec = doc.get("spec")
        self.spec: dict[str, Any] = spec if isinstance(spec, dict) else {}
        self.ctx = ctx
        meta = doc.get("metadata")
        self.meta: dict[str, Any] = meta if isinstance(meta, dict) else {}
        self.name = str(self.meta.get("name") or "")
        self.kind = str(doc.get("kind") or "")
        self.api = str(doc.get("apiVersion") or "")
        self._used: set[tuple[str, ...]] = set()

    def peek(self, path: str) -> Any:
        node: Any = self.spec
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def has(self, path: str) -> bool:
        return not _empty(self.peek(path))

    def get(self, path: str, default: Any = None) -> Any:
        self._used.add(tuple(path.split(".")))
        value = self.peek(path)
        return default if value is None else value

    def text(self, path: str) -> str | None:
        """A scalar field as text (``None`` when absent or empty); a mapping or list is refused."""
        value = self.get(path)
        if _empty(value):
            return None
        if isinstance(value, (dict, list)):
            raise Unsupported(f"spec.{path}: expected a single value, got a {type(value).__name__}")
        return str(value).lower() if isinstance(value, bool) else str(value)

    def flag(self, path: str) -> bool:
        value = self.get(path)
        return value is True or (isinstance(value, str) and value.strip().lower() == "true")

    def strings(self, path: str) -> list[str]:
        value = self.get(path)
        if _empty(value):
            return []
        if isinstance(value, list):
            return [str(v) for v in value if not _empty(v) and not isinstance(v, (dict, list))]
        if isinstance(value, dict):
            raise Unsupported(f"spec.{path}: expected a list, got a mapping")
        return [s.strip() for s in str(value).split(",") if s.strip()]

    def drop(self, path: str, why: str) -> None:
        """Mark ``path`` handled and, when it holds something, report it as not carried."""
        if self.has(path):
            self._used.add(tuple(path.split(".")))
            self.ctx.problem(f"spec.{path}: {why}")

    def note(self, path: str, text: str) -> None:
        """Mark ``path`` handled and, when it holds something, add a note about it."""
        if self.has(path):
            self._used.add(tuple(path.split(".")))
            self.ctx.note(f"spec.{path}: {text}")

    # ------------------------------------------------------------------ secrets

    def secret(
        self, path: str, what: str, key: str, *, hint: str = "VALUE", secret: bool = True
    ) -> str | None:
        """A field that holds a secret (or a value that may come from a Secret) → ``${params.…}``.

        ``key`` names the parameter of an inline value (``COMPONENT_KEY``); a reference
        names it after the Secret and its key (shared by every component that uses it).
        ``hint`` says what to pass (``VALUE``, ``FILE``…). The value is never returned.
        """
        value = self.get(path)
        if _empty(value):
            return None
        inline: Any = None
        ref: Any = None
        if isinstance(value, dict):
            ref = value.get("valueFromSecret") or value.get("secretKeyRef")
            if ref is None and "value" in value:
                inline = value["value"]
                if _empty(inline):
                    return None
            elif not isinstance(ref, dict) or not ref.get("name") or not ref.get("key"):
                raise Unsupported(f"spec.{path}: expected value, valueFromSecret or secretKeyRef")
        elif isinstance(value, list):
            raise Unsupported(f"spec.{path}: expected value, valueFromSecret or secretKeyRef")
        else:
            inline = value
        if ref is not None:
            sname, skey = str(ref["name"]), str(ref["key"])
            param = self.ctx.param(
                f"{sname}_{skey}",
                f"{what} (TriggerMesh read it from Secret {sname}, key {skey})",
                secret=secret,
                origin=f"secret:{sname}/{skey}",
            )
            self.ctx.note(
                f"spec.{path}: the {what} came from Secret {sname}/{skey}: "
                f"pass --param {ref_name(param)}={hint}"
            )
            return param
        if secret:
            self.ctx.secret_values.add(str(inline))
        param = self.ctx.param(
            f"{self.name}_{key}",
            f"{what} of {self.kind} {self.name}",
            secret=secret,
            origin=f"inline:{self.kind}/{self.name}/{path}",
        )
        if secret:
            self.ctx.note(
                f"spec.{path}: the {what} was written in the manifest: it is not copied; "
                f"pass --param {ref_name(param)}={hint}"
            )
        else:
            self.ctx.note(f"spec.{path}: the {what} is a parameter: pass --param {ref_name(param)}={hint}")
        return param

    def value(self, path: str, what: str, key: str) -> str | None:
        """A non-secret ``{value: …}`` / ``valueFromSecret`` field: the value itself, or a parameter."""
        raw = self.peek(path)
        if isinstance(raw, dict) and "value" in raw and not raw.get("valueFromSecret"):
            self.get(path)
            return None if _empty(raw["value"]) else str(raw["value"])
        if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
            self.get(path)
            return str(raw)
        return self.secret(path, what, key)

    # ------------------------------------------------------------------ what was not read

    def unused(self) -> list[str]:
        """Every part of ``spec`` no converter read, as the largest unread paths (``spec.a.b``)."""
        out: list[str] = []

        def walk(node: dict[str, Any], prefix: tuple[str, ...]) -> None:
            for k, v in node.items():
                p = (*prefix, str(k))
                if any(p[: len(u)] == u for u in self._used) or _empty(v) or v is False:
                    continue
                if isinstance(v, dict) and any(u[: len(p)] == p for u in self._used):
                    walk(v, p)
                else:
                    out.append("spec." + ".".join(p))

        walk(self.spec, ())
        return out


def ref_name(ref: str) -> str:
    """``NAME`` of ``${params.NAME}``."""
    return ref[len("${params.") : -1]


def config_problems(role: str, type_id: str, config: dict[str, Any]) -> str:
    """What the connector's config schema refuses in ``config`` ('' when valid).

    Values that hold a parameter are checked when the parameter is known (validate
    with ``--param``, run), not here.
    """
    from meshline import registry
    from meshline.config import config_problems as problems_of

    try:
        component = registry.lookup(role, type_id)  # type: ignore[arg-type]
    except ImportError:
        return ""  # the connector's extra is not installed here: validate will say so
    if component is None:
        return f"Meshline has no {type_id} {role} in this version"
    out = []
    for problem in problems_of(component.config, config):
        message = " ".join(part.strip() for part in problem.message.splitlines() if part.strip())
        text = f"{problem.key or 'config'}: {message}" if problem.path or problem.kind == "rule" else message
        # A parameter is checked when its value is known (validate --param, run): not here.
        named = [k for k in config if re.search(rf"(^|[\s.'\"]){re.escape(k)}\b", text)]
        if any(has_param(config[k]) for k in named) or (not named and has_param(config)):
            continue
        out.append(text)
    return "; ".join(out)


def has_param(value: Any) -> bool:
    if isinstance(value, str):
        return "${params." in value
    if isinstance(value, dict):
        return any(has_param(v) for v in value.values())
    if isinstance(value, list):
        return any(has_param(v) for v in value)
    return False
