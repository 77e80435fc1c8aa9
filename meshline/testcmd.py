"""``meshline test``: the tests inside integration files, their report, and ``--update``."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from meshline.errors import UsageError
from meshline.loading import load_report, params, print_problems

if TYPE_CHECKING:
    import argparse

    from meshline.compiler.testing import CaseResult
    from meshline.reports import TestRecord
    from meshline.spec.model import Integration, TestCase

__all__ = ["test_once"]


def test_once(args: argparse.Namespace) -> int:
    from meshline.compiler.testing import run_case, selected
    from meshline.reports import TestRecord, dumps, junit_xml, target_json, test_json

    text = args.format == "text"
    params_ = params(args.param)
    records: list[TestRecord] = []
    reports = []
    for path in args.files:
        result, report = load_report(path, params_)
        reports.append(report)
        if text:
            print_problems(report)
        else:  # errors are in the JSON report; warnings go to stderr
            print_problems(replace(report, problems=[p for p in report.problems if p.severity != "error"]))
        if result is None:
            continue
        updates: list[Any] = []
        updated: list[TestRecord] = []
        for integration in result.integrations:
            if not integration.tests and text:
                print(f"{path}: {integration.name}: no tests")
            redact = integration.redactor.redact
            for index, case in enumerate(integration.tests):
                if not selected(integration, case, args.k):
                    continue
                r = run_case(integration, case)
                status = "passed" if r.passed else ("error" if r.error else "failed")
                record = TestRecord(
                    file=path,
                    integration=integration.name,
                    name=case.name,
                    line=r.line,
                    status=status,
                    seconds=r.duration,
                    messages=list(r.problems),
                    targets=[target_json(tr, redact) for tr in r.targets],
                )
                if status == "failed" and args.update:
                    change = _expectation_updates(integration, index, case, r)
                    if change:
                        updates.extend(change)
                        updated.append(record)
                records.append(record)
                if text:
                    _print_case(record)
        if updates:
            _write_updates(path, updates, updated, text)
    if args.k and not records and text:
        print(f"no test matches -k {args.k!r}", file=sys.stderr)
    summary = test_json(records, reports)
    if args.report:
        try:
            with open(args.report, "wb") as fh:
                fh.write(junit_xml(records, reports))
        except OSError as e:
            raise UsageError(f"--report: cannot write {args.report}: {e.strerror or e}") from None
    if text:
        print(f"{summary['passed']} passed, {summary['failed']} failed")
    else:
        print(dumps(summary))
    if args.k and not records:
        return 1
    return 0 if summary["failed"] == 0 else 1


def _print_case(record: TestRecord) -> None:
    if record.status == "passed":
        print(f"PASS {record.integration}: {record.name}")
        return
    where = f"{record.file}:{record.line}: " if record.line else ""
    print(f"{'ERROR' if record.status == 'error' else 'FAIL'} {where}{record.integration}: {record.name}")
    for line in record.messages:
        print(f"  {line}")


def _expectation_updates(
    integration: Integration, index: int, case: TestCase, result: CaseResult
) -> list[Any]:
    """``--update``: the new expect lists of a failed case, unless they would hold a secret value."""
    from meshline.compiler.testing import updated_expectations
    from meshline.spec.rewrite import ExpectUpdate, flow

    new = updated_expectations(case, result)
    text = flow(new)
    if integration.redactor.redact(text) != text:
        where = f"{integration.file}: {integration.name}: {case.name}"
        print(f"{where}: not updated: its outputs hold a secret value", file=sys.stderr)
        return []
    return [ExpectUpdate(integration.name, index, target, events) for target, events in new.items()]


def _write_updates(path: str, updates: list[Any], records: list[Any], text: bool) -> None:
    """Rewrite the expectations in ``path`` (only their text); then the cases count as updated."""
    import codecs

    from meshline.spec.rewrite import RewriteError, rewrite_expectations

    real = os.path.realpath(path)  # a symlink stays a symlink
    tmp = f"{real}.meshline-update"
    try:
        with open(real, "rb") as fh:
            raw = fh.read()
        bom = raw.startswith(codecs.BOM_UTF8)
        try:
            original = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RewriteError(f"{path}: only UTF-8 files can be updated") from None
        new = rewrite_expectations(original, updates, path)
        with open(tmp, "wb") as fh:
            fh.write((codecs.BOM_UTF8 if bom else b"") + new.encode("utf-8"))
        os.chmod(tmp, os.stat(real).st_mode & 0o7777)
        os.replace(tmp, real)  # all or nothing
    except (OSError, RewriteError) as e:
        message = str(e) if isinstance(e, RewriteError) else f"{path}: cannot update: {e.strerror or e}"
        print(message, file=sys.stderr)
        with contextlib.suppress(OSError):
            os.remove(tmp)
        return
    for r in records:
        r.status = "updated"
    if text:
        names = ", ".join(repr(r.name) for r in records)
        print(f"UPDATED {path}: the expectations of {len(records)} test(s): {names}")
