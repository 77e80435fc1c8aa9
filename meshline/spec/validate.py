"""Phase 4: references and meaning — what a schema cannot say.

:func:`check_references` takes one interpolated document (a dict, possibly with
schema errors: it only looks at what is well-formed) and reports every problem
at once:

- names are unique within each list;
- every reference resolves (trigger ``sources``, ``steps``, ``target``,
  ``delivery.deadLetter``, ``spec.deadLetter``, test ``inputs``/``expect`` keys),
  naming the valid names and the closest one;
- each ``type`` is a registered component (or "not available in this version")
  and its ``config`` parses (:func:`meshline.config.read_config`, whose problems
  carry their key path and kind) and passes the
  component's own ``check`` (a ``python`` step's ``function`` can be imported);
- ``cesql`` and ``jq`` filters compile, and a ``cesql`` filter calls only built-in
  functions with a number of arguments they take; backoff durations parse and ``delay`` ≤ ``max``;
- warnings: a trigger with no dead-letter target, a source no trigger reads, a
  target nothing delivers to.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from typing import Any

from meshline import registry
from meshline.config import parse_duration, read_config
from meshline.registry import Component
from meshline.spec.findings import Finding, Path, closest, describe, suggest

__all__ = ["check_references", "compile_filter_expression"]

_SECTIONS = {
    "parameters": "parameter",
    "sources": "source",
    "transformations": "transformation",
    "targets": "target",
    "triggers": "trigger",
    "tests": "test",
}
_COMPONENTS = (("sources", "source"), ("transformations", "transformation"), ("targets", "target"))
_COMPILERS = {
    "cesql": ("meshline.transforms.cesql", "compile_cesql", "CesqlParseError", "CESQL expression"),
    "jq": ("meshline.transforms.jq", "compile_jq", "JqCompileError", "jq program"),
}
_DURATION_EXPECTED = "a duration like 200ms, 30s or 5m"


def _items(spec: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
    value = spec.get(section)
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _names(spec: dict[str, Any], section: str, findings: list[Finding]) -> list[str]:
    """The names declared in a section, reporting duplicates."""
    names: list[str] = []
    first: dict[str, int] = {}
    what = _SECTIONS[section]
    for i, item in _items(spec, section):
        name = item.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            findings.append(
                Finding(
                    ("spec", section, i, "name"),
                    f"duplicate {what} name {name!r} (spec.{section}[{first[name]}] has the same name)",
                )
            )
            continue
        first[name] = i
        names.append(name)
    return names


def _resolve(value: Any, known: list[str], what: str, section: str, path: Path) -> Finding | None:
    """A finding when ``value`` names no declared ``what``."""
    if not isinstance(value, str) or value in known:
        return None
    if not known:
        return Finding(path, f"no {what} named {value!r}: no {what}s are declared in spec.{section}")
    listing = ", ".join(known)
    return Finding(path, f"no {what} named {value!r}{suggest(value, known)} ({what}s: {listing})")


def _safe_ids(kind: str, planned: bool = False) -> list[str]:
    try:
        return list(registry.planned_ids(kind) if planned else registry.ids(kind))  # type: ignore[arg-type]
    except Exception:
        return []


def _one_line(message: str) -> str:
    """A message of several lines (a compiler's excerpt with a caret) as one line."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def _config_findings(component: Component, config: dict[str, Any], base: Path) -> tuple[Any, list[Finding]]:
    """The parsed config (``None`` when it has problems) and the findings of its problems."""
    try:
        parsed, problems = read_config(component.config, config)
    except Exception as e:
        return None, [Finding(base, f"could not check the config: {type(e).__name__}: {e}")]
    # Keys still holding an unresolved ${params.X}/${env.X} (validate is lenient about
    # missing values) are checked when the integration runs, with the real value.
    pending = {k for k, v in config.items() if "${" in repr(v)}
    problems = [p for p in problems if not (p.path and p.path[0] in pending)]
    missing = [str(p.path[0]) for p in problems if len(p.path) == 1 and p.kind == "missing-key"]
    replaced: set[str] = set()
    out: list[Finding] = []
    for problem in problems:
        if problem.kind == "unknown-key" and len(problem.path) == 1:
            key = str(problem.path[0])
            guess = closest(key, missing) or closest(key, list(problem.choices))
            if guess in missing:
                replaced.add(guess)
            hint = f"; did you mean {guess!r}?" if guess else ""
            listing = ", ".join(problem.choices)
            out.append(Finding((*base, key), f"unknown key{hint} (expected one of: {listing})", at_key=True))
        else:
            out.append(Finding((*base, *problem.path), _one_line(problem.message)))
    # a missing key that a misspelt one stands for is said once, by the misspelt one
    out = [
        f
        for f, p in zip(out, problems, strict=True)
        if not (p.kind == "missing-key" and len(p.path) == 1 and p.path[0] in replaced)
    ]
    return parsed, out


def _check_components(
    spec: dict[str, Any], findings: list[Finding], directory: str | None, configs: dict[Path, Any]
) -> None:
    for section, kind in _COMPONENTS:
        for i, item in _items(spec, section):
            type_id = item.get("type")
            if not isinstance(type_id, str) or not type_id:
                continue
            path: Path = ("spec", section, i)
            try:
                component = registry.lookup(kind, type_id)  # type: ignore[arg-type]
            except Exception as e:
                findings.append(Finding((*path, "type"), f"{kind} type {type_id!r} could not be loaded: {e}"))
                continue
            if component is None:
                available = _safe_ids(kind)
                listing = ", ".join(available) or "none"
                if type_id in _safe_ids(kind, planned=True):
                    message = (
                        f"{kind} type {type_id!r} is not available in this version of Meshline "
                        f"(available: {listing})"
                    )
                else:
                    hint = suggest(type_id, available + _safe_ids(kind, planned=True))
                    message = f"unknown {kind} type {type_id!r}{hint} (known: {listing})"
                findings.append(Finding((*path, "type"), message))
                continue
            config = item.get("config")
            if config is None or isinstance(config, dict):
                parsed, found = _config_findings(component, config or {}, (*path, "config"))
                findings.extend(found)
                if parsed is not None:
                    configs[path] = parsed
                    if component.check is not None and not found:
                        base = (*path, "config")
                        findings.extend(_component_check(component, parsed, config or {}, base, directory))


def _component_check(
    component: Component, parsed: Any, config: dict[str, Any], base: Path, directory: str | None
) -> list[Finding]:
    """The component's own check beyond its config's rules (``Component.check``), at the keys it names."""
    assert component.check is not None
    try:
        problems = component.check(parsed, directory)
    except Exception as e:
        return [Finding(base, f"could not check the config: {type(e).__name__}: {e}")]
    return [Finding((*base, *_split_key(key, config)), message) for key, message in problems]


def _split_key(key: str, config: dict[str, Any]) -> Path:
    """``"auth.user"`` → ``("auth", "user")``, ``"hosts[0]"`` → ``("hosts", 0)``, the config → ``()``."""
    if not key or (key == "config" and "config" not in config):
        return ()
    parts: list[str | int] = []
    for index, name in re.findall(r"\[(\d+)\]|([^.\[\]]+)", key):
        parts.append(int(index) if index else name)
    return tuple(parts)


def compile_filter_expression(dialect: str, expression: str) -> str | None:
    """The compiler's message when a ``cesql``/``jq`` expression does not compile, else ``None``.

    When the compiler module cannot be imported (not built yet, or an optional
    dependency is missing) the expression is not checked here.
    """
    module_name, function, error_name, what = _COMPILERS[dialect]
    try:
        module = importlib.import_module(module_name)
    except Exception:
        return None
    compile_fn = getattr(module, function, None)
    error_cls = getattr(module, error_name, None)
    if compile_fn is None:
        return None
    try:
        compile_fn(expression)
    except Exception as e:
        if isinstance(error_cls, type) and isinstance(e, error_cls):
            message = str(e) or type(e).__name__
            return message if message.lower().startswith("invalid") else f"invalid {what}: {message}"
        return f"could not compile the {what}: {type(e).__name__}: {e}"
    return None


def _check_filter(value: Any, path: Path, findings: list[Finding]) -> None:
    if not isinstance(value, dict) or len(value) != 1:
        return
    ((dialect, argument),) = value.items()
    if dialect in ("all", "any") and isinstance(argument, list):
        for j, nested in enumerate(argument):
            _check_filter(nested, (*path, dialect, j), findings)
    elif dialect == "not":
        _check_filter(argument, (*path, "not"), findings)
    elif dialect in _COMPILERS and isinstance(argument, str) and argument:
        message = compile_filter_expression(dialect, argument)
        if message:
            findings.append(Finding((*path, dialect), message))
        elif dialect == "cesql":
            findings.extend(Finding((*path, dialect), m) for m in cesql_function_problems(argument))


def cesql_function_problems(expression: str) -> list[str]:
    """Calls of a (valid) CESQL expression to functions that do not exist or take other arguments.

    They compile — the specification makes such a call false with an error at every
    evaluation — so the filter would never match; validation says so, from the
    compiler's function table.
    """
    try:
        from meshline.transforms.cesql import function_problems

        return [
            f"CESQL expression never matches: column {e.column}: {e.message}"
            for e in function_problems(expression)
        ]
    except Exception:  # not valid CESQL: compile_filter_expression said so
        return []


def _duration(value: Any, path: Path, findings: list[Finding]) -> float | None:
    if value is None:
        return None
    try:
        return float(parse_duration(value))
    except (ValueError, TypeError):
        findings.append(Finding(path, f"expected {_DURATION_EXPECTED}, found {describe(value)}"))
        return None


def _check_triggers(spec: dict[str, Any], names: dict[str, list[str]], findings: list[Finding]) -> None:
    for i, trigger in _items(spec, "triggers"):
        path: Path = ("spec", "triggers", i)
        sources = trigger.get("sources")
        if isinstance(sources, list):
            for j, source in enumerate(sources):
                found = _resolve(source, names["sources"], "source", "sources", (*path, "sources", j))
                findings.extend([found] if found else [])
        steps = trigger.get("steps")
        if isinstance(steps, list):
            for j, step in enumerate(steps):
                found = _resolve(
                    step, names["transformations"], "transformation", "transformations", (*path, "steps", j)
                )
                findings.extend([found] if found else [])
        found = _resolve(trigger.get("target"), names["targets"], "target", "targets", (*path, "target"))
        findings.extend([found] if found else [])
        filters = trigger.get("filters")
        if isinstance(filters, list):
            for j, item in enumerate(filters):
                _check_filter(item, (*path, "filters", j), findings)
        delivery = trigger.get("delivery")
        if not isinstance(delivery, dict):
            continue
        found = _resolve(
            delivery.get("deadLetter"),
            names["targets"],
            "target",
            "targets",
            (*path, "delivery", "deadLetter"),
        )
        findings.extend([found] if found else [])
        backoff = delivery.get("backoff")
        if isinstance(backoff, dict):
            bpath = (*path, "delivery", "backoff")
            delay = _duration(backoff.get("delay"), (*bpath, "delay"), findings)
            longest = _duration(backoff.get("max"), (*bpath, "max"), findings)
            if delay is not None and longest is not None and delay > longest:
                findings.append(
                    Finding(
                        (*bpath, "delay"),
                        f"the first delay ({backoff['delay']}) is longer than the maximum ({backoff['max']})",
                    )
                )


def _check_tests(spec: dict[str, Any], names: dict[str, list[str]], findings: list[Finding]) -> None:
    for i, test in _items(spec, "tests"):
        for key, section, what in (("inputs", "sources", "source"), ("expect", "targets", "target")):
            mapping = test.get(key)
            if not isinstance(mapping, dict):
                continue
            for name in mapping:
                found = _resolve(name, names[section], what, section, ("spec", "tests", i, key, name))
                if found:
                    findings.append(dataclasses.replace(found, at_key=True))


def _warn_unused(spec: dict[str, Any], names: dict[str, list[str]], findings: list[Finding]) -> None:
    triggers = _items(spec, "triggers")
    spec_dead_letter = spec.get("deadLetter")
    read: set[str] = set()
    used: set[str] = {spec_dead_letter} if isinstance(spec_dead_letter, str) else set()
    for i, trigger in triggers:
        sources = trigger.get("sources")
        if isinstance(sources, list):
            read.update(s for s in sources if isinstance(s, str))
        else:
            read.update(names["sources"])
        if isinstance(trigger.get("target"), str):
            used.add(trigger["target"])
        delivery = trigger.get("delivery")
        own = delivery.get("deadLetter") if isinstance(delivery, dict) else None
        dead_letter = own or spec_dead_letter
        if isinstance(dead_letter, str):
            used.add(dead_letter)
        else:
            name = trigger.get("name", f"#{i}")
            findings.append(
                Finding(
                    ("spec", "triggers", i),
                    f"trigger {name!r} has no dead-letter target: failed events are only counted and logged "
                    "(set spec.deadLetter or delivery.deadLetter)",
                    "warning",
                )
            )
    for section, what, seen, verb in (
        ("sources", "source", read, "read by any trigger"),
        ("targets", "target", used, "used by any trigger or dead letter"),
    ):
        for i, item in _items(spec, section):
            name = item.get("name")
            if isinstance(name, str) and name not in seen and triggers:
                findings.append(Finding(("spec", section, i), f"{what} {name!r} is not {verb}", "warning"))


def check_references(
    data: Any, *, directory: str | None = None, configs: dict[Path, Any] | None = None
) -> list[Finding]:
    """Every reference and semantic problem of one document (errors and warnings).

    ``directory``: the integration file's directory, for the checks of components that
    look at what is next to the file (a ``python`` step's module). ``configs``, when
    given, receives each component's parsed config dataclass by its path
    (``("spec", "sources", 0)``): the one parse of it, which the model keeps
    (:mod:`meshline.spec.resolve`).
    """
    spec = data.get("spec") if isinstance(data, dict) else None
    if not isinstance(spec, dict):
        return []
    findings: list[Finding] = []
    names = {section: _names(spec, section, findings) for section in _SECTIONS}
    _check_components(spec, findings, directory, {} if configs is None else configs)
    _check_triggers(spec, names, findings)
    found = _resolve(spec.get("deadLetter"), names["targets"], "target", "targets", ("spec", "deadLetter"))
    findings.extend([found] if found else [])
    _check_tests(spec, names, findings)
    if not any(f.is_error for f in findings):
        _warn_unused(spec, names, findings)
    return findings
