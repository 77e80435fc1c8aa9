"""The CLI as a user runs it: exit statuses, located errors, outputs on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshline.connectors.formats import read_rows

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "pipelines" / "quickstart.yaml"


def test_validate_quickstart(meshline):
    r = meshline("validate", str(QUICKSTART))
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout


def test_broken_file_gets_one_located_line_per_problem(meshline, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: meshline.dev/v1alpha1\n"
        "kind: Integration\n"
        "metadata: {name: broken}\n"
        "spec:\n"
        "  sources:\n"
        "    - {name: in, type: file, config: {path: x.jsonl}}\n"
        "  targets:\n"
        "    - {name: out, type: file, config: {path: out, format: csv}}\n"
        "  triggers:\n"
        "    - name: t\n"
        "      target: outt\n"
        "      filters:\n"
        '        - cesql: "type = "\n'
    )
    r = meshline("validate", str(bad))
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in r.stderr
    located = [ln for ln in lines if ln.startswith(f"{bad}:")]
    assert len(located) >= 3, r.stderr
    assert any(":8:" in ln and "format" in ln for ln in located), r.stderr
    assert any(":11:" in ln and "outt" in ln for ln in located), r.stderr
    assert any(":13:" in ln for ln in located), r.stderr


def test_test_command_reports_counts(meshline):
    r = meshline("test", str(QUICKSTART))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "4 passed, 0 failed"


def test_failing_test_exits_1(meshline, tmp_path):
    text = QUICKSTART.read_text().replace("total: 150.5", "total: 999")
    f = tmp_path / "q.yaml"
    f.write_text(text)
    r = meshline("test", str(f))
    assert r.returncode == 1
    assert r.stdout.strip().splitlines()[-1] == "3 passed, 1 failed"
    assert "missing:" in r.stdout and "unexpected:" in r.stdout


def test_run_quickstart_writes_outputs_and_summary(meshline, tmp_path):
    r = meshline("run", str(QUICKSTART), "--param", f"output={tmp_path}")
    assert r.returncode == 0, r.stderr
    big = [
        row for f in (tmp_path / "big-orders").rglob("*.jsonl") for row in read_rows("jsonl", f.read_bytes())
    ]
    assert big and all(float(e["data"]["amount"]) > 100 and "total" in e["data"] for e in big)
    eu = [
        row
        for f in (tmp_path / "eu-orders").rglob("*.parquet")
        for row in read_rows("parquet", f.read_bytes())
    ]
    assert eu and all(row["type"] == "com.example.order.eu" for row in eu)
    rejects = [
        row
        for f in (tmp_path / "dead-letters").rglob("*.jsonl")
        for row in read_rows("jsonl", f.read_bytes())
    ]
    stages = sorted(e["meshlineerrorstage"] for e in rejects)
    assert stages == ["decode", "decode", "filter"], rejects
    assert "cancelled: " in r.stdout
    assert "trigger" in r.stderr and "big-orders" in r.stderr  # the summary table
    assert not list(tmp_path.rglob(".meshline-tmp*"))


def test_graph_mermaid_and_dot(meshline):
    r = meshline("graph", str(QUICKSTART))
    assert r.returncode == 0 and r.stdout.startswith("flowchart LR")
    assert "big-orders" in r.stdout
    r = meshline("graph", str(QUICKSTART), "--format", "dot")
    assert r.returncode == 0 and r.stdout.startswith("digraph")


def test_connectors_and_schema(meshline):
    r = meshline("connectors")
    assert r.returncode == 0 and "file" in r.stdout and "generate" in r.stdout
    r = meshline("connectors", "file")
    assert r.returncode == 0 and "path (required)" in r.stdout and '[default: "jsonl"]' in r.stdout
    r = meshline("connectors", "nope")
    assert r.returncode == 2 and "unknown connector" in r.stderr
    r = meshline("schema")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert schema["properties"]["apiVersion"]


def test_usage_error_exits_2(meshline):
    r = meshline("run")
    assert r.returncode == 2
    r = meshline("run", str(QUICKSTART), "--param", "novalue")
    assert r.returncode == 2 and "NAME=VALUE" in r.stderr


def test_missing_file_is_a_clear_error(meshline, tmp_path):
    r = meshline("run", str(tmp_path / "nope.yaml"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "nope.yaml" in r.stderr


def test_secret_parameter_never_printed(meshline, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: s}\nspec:\n"
        "  parameters:\n    - {name: token, secret: true, required: true}\n"
        "  sources:\n"
        "    - {name: in, type: generate, config: {count: 1, event: {data: {t: '${params.token}'}}}}\n"
        "  targets:\n    - {name: out, type: file, config: {path: '${params.token}', format: nope}}\n"
        "  triggers:\n    - {name: t, target: out}\n"
    )
    r = meshline("validate", str(f), "--param", "token=hunter2-very-secret")
    assert r.returncode == 1
    assert "hunter2-very-secret" not in r.stderr + r.stdout
    r = meshline("graph", str(f), "--param", "token=hunter2-very-secret")
    assert "hunter2-very-secret" not in r.stdout


def test_beam_options_after_double_dash(meshline, tmp_path):
    r = meshline("run", str(QUICKSTART), "--param", f"output={tmp_path}", "--", "--direct_num_workers=1")
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "big-orders").rglob("*.jsonl"))
    r = meshline("validate", str(QUICKSTART), "--", "--direct_num_workers=1")
    assert r.returncode == 2 and "only for 'run'" in r.stderr
