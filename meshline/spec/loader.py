"""The phases in order: load → interpolate → paths → schema → references → defaults → build.

:func:`load_text` / :func:`load_file` run them on every document of a file and
either return the integrations (with warnings) or raise one
:class:`~meshline.errors.SpecError` carrying every error, each
``FILE:LINE:COL: message``, sorted by position, with secrets masked.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from meshline.errors import Location, Problem, SpecError
from meshline.spec.defaults import apply_defaults
from meshline.spec.findings import Finding, Path, suggest
from meshline.spec.interpolate import interpolate
from meshline.spec.model import Integration, build_integration
from meshline.spec.paths import resolve_paths
from meshline.spec.redact import Redactor
from meshline.spec.schemacheck import check_schema
from meshline.spec.validate import check_references
from meshline.spec.yamlload import Document, parse_yaml

__all__ = ["LoadResult", "load_file", "load_text"]


@dataclass
class LoadResult:
    """The integrations of a file (in document order) and the warnings about them."""

    integrations: list[Integration] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class _Checked:
    document: Document
    data: dict[str, Any]
    problems: list[Problem]
    redactor: Redactor
    declared: list[str]
    placeholders: set[Path] = field(default_factory=set)
    references: dict[str, str] = field(default_factory=dict)
    configs: dict[Path, Any] = field(default_factory=dict)  # parsed component configs by path


def _without_typed_placeholders(data: dict[str, Any], placeholders: set[Path]) -> dict[str, Any]:
    """Drop placeholders (``strict=False``) where the model needs a number, so the default is used."""
    for path in placeholders:
        typed = (
            len(path) >= 5
            and path[:2] == ("spec", "triggers")
            and path[3] == "delivery"
            and (path[4:] == ("retries",) or (path[4] == "backoff" and len(path) == 6))
        )
        if not typed:
            continue
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]
    return data


def _check(
    document: Document,
    params: Mapping[str, Any],
    env: Mapping[str, str] | None,
    strict: bool,
    secret_manager: Callable[[str], str] | None = None,
    directory: str | None = None,
) -> _Checked:
    interpolated = interpolate(
        document.data, params=params, env=env, strict=strict, secret_manager=secret_manager
    )
    data = resolve_paths(interpolated.data, directory, interpolated.from_caller)
    findings: list[Finding] = list(interpolated.findings)
    configs: dict[Path, Any] = {}
    later = check_schema(data) + check_references(data, directory=directory, configs=configs)
    # A placeholder is not the user's mistake: drop errors about its value (not about its key),
    # and errors of rules that judged a placeholder's text (a message quoting it).
    tokens = _placeholder_tokens(data, interpolated.placeholders)
    findings.extend(
        f
        for f in later
        if not (
            f.is_error
            and not f.at_key
            and (interpolated.under_placeholder(f.path) or any(t in f.message for t in tokens))
        )
    )
    seen: set[tuple[Any, ...]] = set()
    problems: list[Problem] = []
    for finding in findings:
        problem = Problem(
            document.table.location(finding.path, key=finding.at_key), finding.text(), finding.severity
        )
        if (problem.location, problem.message) not in seen:
            seen.add((problem.location, problem.message))
            problems.append(problem)
    return _Checked(
        document,
        data,
        problems,
        Redactor(interpolated.secrets),
        interpolated.declared,
        interpolated.placeholders,
        interpolated.references,
        configs,
    )


_TOKEN = re.compile(r"\$\{[^{}]*\}?")


def _placeholder_tokens(data: Any, placeholders: set[Path]) -> set[str]:
    """The unresolved ``${…}`` references left in place (``strict=False``)."""
    tokens: set[str] = set()
    for path in placeholders:
        value: Any = data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                value = None
                break
        if isinstance(value, str):
            tokens.update(_TOKEN.findall(value))
    return tokens


def _name(checked: _Checked) -> str | None:
    metadata = checked.data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else None


def _cross_document(
    checked: list[_Checked], params: Mapping[str, Any], file: str, strict: bool
) -> list[Problem]:
    """Problems that need every document: integration names, --param names nobody declares."""
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for item in checked:
        name = _name(item)
        if name is None:
            continue
        if name in first:
            problems.append(
                Problem(
                    item.document.table.location(("metadata", "name")),
                    f"metadata.name: duplicate integration name {name!r} (also at line {first[name]})",
                )
            )
        else:
            first[name] = item.document.table.line(("metadata", "name"))
    declared = sorted({name for item in checked for name in item.declared})
    for name in params:
        if name not in declared:
            listing = ", ".join(declared) if declared else "none"
            problems.append(
                Problem(
                    Location(file),
                    f"--param {name}: no parameter {name!r} is declared{suggest(name, declared)} "
                    f"(declared parameters: {listing})",
                    "error" if strict else "warning",
                )
            )
    return problems


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.location.line, p.location.col))


def load_text(
    text: str | bytes,
    filename: str = "<string>",
    params: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    strict: bool = True,
    secret_manager: Callable[[str], str] | None = None,
    directory: str | None = None,
) -> LoadResult:
    """Load, check and build every integration in ``text``; raise :class:`SpecError` listing every error.

    ``params`` are ``--param`` values; ``env`` is the environment for ``${env.NAME}``
    (``None``: the process environment). ``strict=False`` (``meshline validate``)
    accepts missing required parameters and environment variables with a warning.
    ``secret_manager(NAME)`` reads a secret parameter given as a Secret Manager
    secret version; without it the value is left for the workers to read.
    ``directory``: where the text was read from; relative paths written in it are read
    against it (:mod:`meshline.spec.paths`) and a ``python`` step imports from it
    (``None``: paths stay as written, relative to the current directory).
    """
    params = dict(params or {})
    documents, problems = parse_yaml(text, filename)
    checked = [_check(document, params, env, strict, secret_manager, directory) for document in documents]
    redactor = Redactor()
    for item in checked:
        redactor = redactor.merged(item.redactor)
        problems.extend(item.problems)
    problems.extend(_cross_document(checked, params, filename, strict))
    if not documents and not problems:
        problems.append(Problem(Location(filename), "no integration found: the file has no YAML documents"))
    problems = [Problem(p.location, redactor.redact(p.message), p.severity) for p in _sorted(problems)]
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    if errors:
        error = SpecError(errors)
        error.warnings = warnings  # type: ignore[attr-defined]
        raise error
    integrations = [
        build_integration(
            apply_defaults(_without_typed_placeholders(copy.deepcopy(item.data), item.placeholders)),
            file=filename,
            table=item.document.table,
            redactor=item.redactor,
            secret_refs=item.references,
            directory=directory,
            configs=item.configs,
        )
        for item in checked
    ]
    return LoadResult(integrations, warnings)


def load_file(
    path: str | FsPath,
    params: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    strict: bool = True,
    secret_manager: Callable[[str], str] | None = None,
) -> LoadResult:
    """:func:`load_text` on the contents of ``path``; an unreadable file is a :class:`SpecError` too.

    Relative paths in the file are read against the file's directory (:mod:`meshline.spec.paths`).
    """
    filename = str(path)
    try:
        data = FsPath(path).read_bytes()
    except OSError as e:
        raise SpecError([Problem(Location(filename), f"cannot read: {e.strerror or e}")]) from None
    directory = os.path.dirname(os.path.abspath(filename))
    return load_text(
        data,
        filename,
        params=params,
        env=env,
        strict=strict,
        secret_manager=secret_manager,
        directory=directory,
    )
