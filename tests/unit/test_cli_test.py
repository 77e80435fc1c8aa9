"""``meshline test``: located field-level failures, ``-k``, ``--update``, ``--report``, ``--format json``."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from meshline.cli import main

FILE = """\
# Orders: a test file with comments that --update must keep.
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: orders}
spec:
  sources:
    - {name: in, type: file, config: {path: in.jsonl}}
  transformations:
    - {name: total, type: jq, config: {program: '.data.total = (.data.amount | tonumber)'}}
  targets:
    - {name: out, type: file, config: {path: out}}
    - {name: rejects, type: file, config: {path: rejects}}
  triggers:
    - {name: big, filters: [{jq: '(.data.amount | tonumber) > 100'}], steps: [total], target: out}
  deadLetter: rejects
  tests:
    # the first case is stale: its total is wrong
    - name: a big order gets its total
      inputs:
        in:
          - {type: order, source: shop, id: "1", data: {amount: "150.5", note: keep}}
      expect:
        out:
          - {id: "1", data: {amount: "150.5", note: keep, total: 999}}   # stale
        rejects: []
    - name: a broken amount is dead-lettered
      inputs:
        in:
          - {type: order, source: shop, id: "2", data: {amount: "n/a"}}
      expect:
        out: []
        rejects:
          - {id: "2", meshlineerrorstage: filter}
    - name: a small order goes nowhere
      inputs:
        in: [{type: order, source: shop, id: "3", data: {amount: "5"}}]
      expect:
        out: []   # was expected to pass, but an update adds it
        rejects: []
"""

# line numbers in FILE (1-based)
CASE_1, TARGET_1, EVENT_1 = 18, 23, 24


@pytest.fixture
def orders(tmp_path: Path) -> Path:
    f = tmp_path / "orders.yaml"
    f.write_text(FILE)
    return f


def test_a_failure_names_file_and_line_and_only_the_differing_fields(orders, capsys):
    assert main(["test", str(orders)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {orders}:{CASE_1}: orders: a big order gets its total" in out
    assert f"{orders}:{TARGET_1}: target out: expected 1 event(s), got 1" in out
    assert f'{orders}:{EVENT_1}: the event with id "1" differs:' in out
    assert "expected: {data.total: 999}" in out and "actual:   {data.total: 150.5}" in out
    details = out[out.index("FAIL") : out.index("PASS")]
    assert "note" not in details and "amount" not in details  # fields that are equal are not shown
    assert "PASS orders: a broken amount is dead-lettered" in out
    assert out.splitlines()[-1] == "2 passed, 1 failed"


def test_k_runs_only_the_matching_tests(orders, capsys):
    assert main(["test", str(orders), "-k", "BROKEN AMOUNT"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["PASS orders: a broken amount is dead-lettered", "1 passed, 0 failed"]
    assert main(["test", str(orders), "-k", "orders: a big"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "0 passed, 1 failed"
    assert main(["test", str(orders), "-k", "no such test"]) == 1
    captured = capsys.readouterr()
    assert "no test matches -k 'no such test'" in captured.err
    assert captured.out.splitlines()[-1] == "0 passed, 0 failed"


def test_update_rewrites_only_the_expectations_then_the_file_passes(orders, capsys):
    orders.write_text(FILE.replace("out: []   # was", 'out: [{id: "3"}]   # was'))
    before = orders.read_text()
    assert main(["test", str(orders), "--update"]) == 0
    out = capsys.readouterr().out
    assert f"UPDATED {orders}: the expectations of 2 test(s)" in out
    after = orders.read_text()
    assert after != before
    # outside the two rewritten lists, the file is byte-identical (comments included)
    head, tail = before.split('          - {id: "1", data: {amount: "150.5", note: keep, total: 999}}', 1)
    assert after.startswith(head)
    assert '          - {id: "1", data: {amount: "150.5", note: keep, total: 150.5}}   # stale\n' in after
    assert after.endswith(
        "        out: []   # was expected to pass, but an update adds it\n        rejects: []\n"
    )
    rest_before = tail[: tail.index('        out: [{id: "3"}]')]
    assert rest_before in after
    assert main(["test", str(orders)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "3 passed, 0 failed"


def test_update_with_k_touches_only_that_test(orders, capsys):
    assert main(["test", str(orders), "--update", "-k", "broken"]) == 0
    assert orders.read_text() == FILE


def test_json_and_junit_reports(orders, tmp_path, capsys):
    report = tmp_path / "junit.xml"
    assert main(["test", str(orders), "--format", "json", "--report", str(report)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["passed"], doc["failed"], doc["errors"]) == (2, 1, [])
    failed = [t for t in doc["tests"] if t["status"] == "failed"]
    assert [(t["file"], t["line"], t["integration"], t["name"]) for t in failed] == [
        (str(orders), CASE_1, "orders", "a big order gets its total")
    ]
    (target,) = failed[0]["targets"]
    assert target == {
        "target": "out",
        "line": TARGET_1,
        "expected": 1,
        "actual": 1,
        "events": [
            {
                "kind": "differs",
                "line": EVENT_1,
                "id": "1",
                "fields": [{"path": "data.total", "expected": 999, "actual": 150.5}],
            }
        ],
    }
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures")) == ("3", "1")
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "a big order gets its total",
        "a broken amount is dead-lettered",
        "a small order goes nowhere",
    ]
    failure = cases[0].find("failure")
    assert failure is not None and "target out" in failure.get("message")
    assert "data.total: 999" in failure.text and cases[0].get("line") == str(CASE_1)
    assert cases[1].find("failure") is None


def test_a_file_that_does_not_load_fails_and_is_reported(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: x}\nspec: {sources: 3}\n"
    )
    report = tmp_path / "junit.xml"
    assert main(["test", str(bad), "--format", "json", "--report", str(report)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["failed"] == 1 and doc["tests"] == []
    assert doc["errors"][0]["file"] == str(bad) and doc["errors"][0]["messages"][0].startswith(f"{bad}:4:")
    root = ET.parse(report).getroot()
    assert root.get("errors") == "1" and root.find("testsuite/testcase/error") is not None


def test_a_refused_update_leaves_the_file_as_it_was(orders, capsys):
    # the failing list is a YAML alias of another case's: rewriting it would change that one too
    text = FILE.replace(
        '        out: []\n        rejects:\n          - {id: "2"',
        '        out: &none []\n        rejects:\n          - {id: "2"',
    )
    text = text.replace('data: {amount: "5"}}]', 'data: {amount: "500"}}]').replace(
        "out: []   # was", "out: *none   # was"
    )
    orders.write_text(text)
    assert main(["test", str(orders), "--update", "-k", "small order"]) == 1
    captured = capsys.readouterr()
    assert "comes from a YAML alias" in captured.err
    assert captured.out.splitlines()[-1] == "0 passed, 1 failed"
    assert orders.read_text() == text
    assert not list(orders.parent.glob("*.meshline-update"))


def test_update_through_a_symlink_rewrites_the_file_behind_it(orders, capsys):
    link = orders.parent / "link.yaml"
    link.symlink_to(orders)
    assert main(["test", str(link), "--update", "-k", "big order"]) == 0
    assert link.is_symlink() and "total: 150.5}}   # stale" in orders.read_text()
    capsys.readouterr()
