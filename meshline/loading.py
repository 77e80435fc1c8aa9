"""Reading integration files for the commands: ``--param`` values, secrets, one report per file."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from meshline.errors import MeshlineError, UsageError

if TYPE_CHECKING:
    from meshline.reports import FileReport
    from meshline.spec.loader import LoadResult

__all__ = ["load", "load_report", "params", "print_problems"]


def params(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name:
            raise UsageError(f"--param expects NAME=VALUE, got {v!r}")
        out[name] = value
    return out


def load(
    path: str, params: dict[str, str] | None = None, strict: bool = True, read_secrets: bool = False
) -> LoadResult:
    """Load a file; ``read_secrets``: read secret parameters given as Secret Manager versions here."""
    from meshline.secrets import read_secret_manager
    from meshline.spec import load_file

    reader = (lambda name: read_secret_manager(name, "a secret parameter")) if read_secrets else None
    return load_file(path, params=params or {}, env=os.environ, strict=strict, secret_manager=reader)


def load_report(path: str, params: dict[str, str]) -> tuple[LoadResult | None, FileReport]:
    """``(LoadResult or None, FileReport)`` of one file, for ``validate`` and ``test``."""
    from meshline.errors import SpecError
    from meshline.reports import FileReport

    report = FileReport(path)
    try:
        result = load(path, params, strict=False)
    except SpecError as e:
        report.problems = list(e.problems) + list(getattr(e, "warnings", []))
        return None, report
    except MeshlineError as e:
        from meshline.secrets import mask

        report.error = mask(" ".join(str(e).split()))
        return None, report
    report.problems = list(result.warnings)
    report.integrations = [i.name for i in result.integrations]
    return result, report


def print_problems(report: FileReport) -> None:
    for p in sorted(report.problems, key=lambda p: (p.severity != "error", p.location.line, p.location.col)):
        print(str(p), file=sys.stderr)
    if report.error:
        print(report.error, file=sys.stderr)
