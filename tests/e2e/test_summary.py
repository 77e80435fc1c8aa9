"""The table a run prints holds the numbers of what happened (CESQL errors included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _events(path: Path) -> None:
    lines = []
    for i in range(12):
        event = {"specversion": "1.0", "id": f"e{i}", "source": "/summary", "type": "t.a"}
        if 3 <= i <= 6:
            event["tier"] = 1
        elif i >= 7:
            event["tier"] = 2
        data: dict[str, object] = {"n": "x" if i in (1, 2) else i}
        if i == 10:
            data["code"] = "12"
        if i == 11:
            data["code"] = "zz"
        event["data"] = data
        lines.append(json.dumps(event))
    lines.insert(5, "{not an event")
    path.write_text("\n".join(lines) + "\n")


SPEC = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: summary}}
spec:
  sources: [{{name: in, type: file, config: {{path: "{src}"}}}}]
  transformations:
    - {{name: code, type: jq, config: {{program: '.data.m = (.data.code | tonumber)'}}}}
  targets:
    - {{name: out, type: file, config: {{path: "{out}", format: jsonl}}}}
    - {{name: rejects, type: file, config: {{path: "{dlq}", format: jsonl}}}}
  triggers:
    - {{name: tiered, filters: [{{cesql: "tier > 1"}}], target: out}}
    - {{name: big, filters: [{{jq: ".data.n + 1 > 10"}}], steps: [code], target: out}}
  deadLetter: rejects
"""


def _table(stderr: str) -> dict[tuple[str, str], list[str]]:
    """(stage, name) -> the row's remaining columns, from the table `meshline run` prints."""
    lines = stderr.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.split()[:3] == ["stage", "name", "in"])
    rows: dict[tuple[str, str], list[str]] = {}
    for line in lines[start + 1 :]:
        cells = line.split()
        if not cells or cells[0] not in ("source", "trigger", "step", "target"):
            break
        rows[(cells[0], cells[1])] = cells[2:]
    return rows


def _rows(folder: Path) -> list[dict]:
    return [json.loads(ln) for f in folder.rglob("*.jsonl") for ln in f.read_text().splitlines() if ln]


def test_summary_counts_every_outcome(meshline, tmp_path):
    src, out, dlq = tmp_path / "in.jsonl", tmp_path / "out", tmp_path / "dlq"
    _events(src)
    spec = tmp_path / "summary.yaml"
    spec.write_text(SPEC.format(src=src, out=out, dlq=dlq))
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    table = _table(r.stderr)
    # source: 13 lines in, 12 events out, 1 line that is not an event
    assert table[("source", "in")] == ["13", "12", "1"]
    # tiered: e0-e2 have no tier (3 CESQL errors: no match), e3-e6 have tier 1, e7-e11 match
    assert table[("trigger", "tiered")] == ["12", "5", "(3", "cesql", "errors)", "5", "0"]
    # big: e1, e2 make the jq filter raise (dead letters); e10, e11 match; e11's step fails
    assert table[("trigger", "big")] == ["12", "2", "1", "3"]
    assert table[("step", "code")] == ["2", "1", "1"]
    assert table[("target", "out")] == ["6", "6", "0"]
    assert table[("target", "rejects")] == ["4", "4", "0"]
    assert sorted(e["id"] for e in _rows(out)) == sorted(["e7", "e8", "e9", "e10", "e11", "e10"])
    dead = _rows(dlq)
    assert sorted(
        (e["id"], e["meshlineerrorstage"]) for e in dead if e["meshlineerrorstage"] != "decode"
    ) == [
        ("e1", "filter"),
        ("e11", "transform"),
        ("e2", "filter"),
    ]
    assert [e["meshlineerrorstage"] for e in dead].count("decode") == 1
