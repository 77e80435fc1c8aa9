"""Machine-readable reports of the CLI: ``--format json`` and ``meshline test --report junit.xml``.

The shapes are documented in ``docs/cli.md`` (a unit test checks them); every
string in a report passed through the file's redactor, so no secret value
reaches one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

from meshline.errors import Problem

__all__ = [
    "FileReport",
    "TestRecord",
    "junit_xml",
    "problem_json",
    "redact_value",
    "test_json",
    "validate_json",
]


def redact_value(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` with every string (keys too) passed through ``redact``; ``(absent)`` markers dropped."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, redact) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value))


def problem_json(problem: Problem) -> dict[str, Any]:
    loc = problem.location
    return {
        "file": loc.file,
        "line": loc.line or None,
        "column": (loc.col or 1) if loc.line else None,
        "severity": problem.severity,
        "message": problem.message,
    }


@dataclass
class FileReport:
    """One file given to ``validate`` or ``test``: its integrations, or why it could not be loaded."""

    file: str
    integrations: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # errors (the file is invalid) and warnings
    error: str | None = None  # not a located problem (e.g. the file cannot be read)

    @property
    def valid(self) -> bool:
        return self.error is None and not any(p.severity == "error" for p in self.problems)


def validate_json(files: Sequence[FileReport]) -> dict[str, Any]:
    return {
        "valid": all(f.valid for f in files),
        "files": [
            {
                "file": f.file,
                "valid": f.valid,
                "integrations": list(f.integrations),
                "problems": [problem_json(p) for p in f.problems]
                + (
                    [{"file": f.file, "line": None, "column": None, "severity": "error", "message": f.error}]
                    if f.error
                    else []
                ),
            }
            for f in files
        ],
    }


@dataclass
class TestRecord:
    """One test case as reported: where it is, how it went, what differed (already redacted)."""

    __test__ = False  # not a pytest class

    file: str
    integration: str
    name: str
    line: int
    status: str  # passed | failed | error | updated
    seconds: float
    messages: list[str] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)


def target_json(result: Any, redact: Callable[[str], str]) -> dict[str, Any]:
    """A :class:`~meshline.compiler.testing.TargetResult` as JSON (values redacted)."""
    events = []
    for p in result.problems:
        item: dict[str, Any] = {"kind": p.kind, "line": p.line or None}
        if p.kind == "differs":
            item["id"] = p.id
            item["fields"] = [
                {
                    "path": path,
                    **({"expected": e} if not _absent(e) else {}),
                    **({"actual": a} if not _absent(a) else {}),
                }
                for path, (e, a) in p.fields.items()
            ]
        if p.expected is not None and p.kind == "missing":
            item["expected"] = p.expected
        if p.actual is not None and p.kind == "unexpected":
            item["actual"] = p.actual
        events.append(redact_value(item, redact))
    return {
        "target": result.target,
        "line": result.line or None,
        "expected": result.expected,
        "actual": result.actual,
        "events": events,
    }


def _absent(value: Any) -> bool:
    from meshline.spec.rewrite import Absent

    return isinstance(value, Absent)


def test_json(records: Sequence[TestRecord], files: Sequence[FileReport]) -> dict[str, Any]:
    broken = [f for f in files if not f.valid]
    return {
        "passed": sum(r.status in ("passed", "updated") for r in records),
        "failed": sum(r.status in ("failed", "error") for r in records) + len(broken),
        "tests": [
            {
                "file": r.file,
                "line": r.line or None,
                "integration": r.integration,
                "name": r.name,
                "status": r.status,
                "seconds": round(r.seconds, 3),
                "messages": list(r.messages),
                "targets": list(r.targets),
            }
            for r in records
        ],
        "errors": [
            {
                "file": f.file,
                "messages": [str(p) for p in f.problems if p.severity == "error"]
                + ([f.error] if f.error else []),
            }
            for f in broken
        ],
    }


def junit_xml(records: Sequence[TestRecord], files: Sequence[FileReport]) -> bytes:
    """JUnit XML (the Ant/Surefire dialect CI tools read): one ``testsuite`` per file."""
    root = ET.Element("testsuites", name="meshline test")
    by_file: dict[str, list[TestRecord]] = {}
    for r in records:
        by_file.setdefault(r.file, []).append(r)
    total = failures = errors = 0
    seconds = 0.0
    for f in files:
        cases = by_file.get(f.file, [])
        n_fail = sum(r.status == "failed" for r in cases)
        n_err = sum(r.status == "error" for r in cases) + (0 if f.valid else 1)
        n_tests = len(cases) + (0 if f.valid else 1)
        t = sum(r.seconds for r in cases)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f.file,
            tests=str(n_tests),
            failures=str(n_fail),
            errors=str(n_err),
            skipped="0",
            time=f"{t:.3f}",
            file=f.file,
        )
        if not f.valid:
            case = ET.SubElement(suite, "testcase", classname=f.file, name="load", file=f.file, time="0")
            messages = [str(p) for p in f.problems if p.severity == "error"] + ([f.error] if f.error else [])
            error = ET.SubElement(
                case, "error", message=messages[0] if messages else "cannot load", type="invalid"
            )
            error.text = "\n".join(messages)
        for r in cases:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=r.integration,
                name=r.name,
                file=r.file,
                line=str(r.line or 0),
                time=f"{r.seconds:.3f}",
            )
            if r.status in ("failed", "error"):
                tag = "failure" if r.status == "failed" else "error"
                element = ET.SubElement(
                    case,
                    tag,
                    message=r.messages[0] if r.messages else r.status,
                    type="mismatch" if tag == "failure" else "error",
                )
                element.text = "\n".join(r.messages)
        total += n_tests
        failures += n_fail
        errors += n_err
        seconds += t
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("time", f"{seconds:.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def dumps(value: Any) -> str:
    """JSON text of a report (UTF-8 characters kept, keys in the documented order)."""
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)
