"""The CLI as a user runs it: exit statuses, located errors, outputs on disk."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import rows_in

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


def test_failing_test_exits_1_and_shows_where_and_what(meshline, tmp_path):
    text = QUICKSTART.read_text()
    f = tmp_path / "q.yaml"
    f.write_text(text.replace("total: 150.5", "total: 999"))
    lines = text.splitlines()
    case = 1 + next(i for i, line in enumerate(lines) if "- name: a big order gets its total" in line)
    event = (
        1 + next(i for i, line in enumerate(lines) if "total: 150.5" in line) - 1
    )  # the event's first line
    r = meshline("test", str(f))
    assert r.returncode == 1
    assert r.stdout.strip().splitlines()[-1] == "3 passed, 1 failed"
    assert f"FAIL {f}:{case}: quickstart: a big order gets its total" in r.stdout
    assert f'{f}:{event}: the event with id "1" differs:' in r.stdout
    assert "expected: {data.total: 999}" in r.stdout and "actual:   {data.total: 150.5}" in r.stdout


def test_update_then_pass(meshline, tmp_path):
    f = tmp_path / "q.yaml"
    stale = QUICKSTART.read_text().replace("total: 150.5", "total: 999")
    f.write_text(stale)
    r = meshline("test", str(f), "--update")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f.read_text() == QUICKSTART.read_text()  # the only change was that number
    r = meshline("test", str(f), "-k", "big order")
    assert r.returncode == 0 and r.stdout.splitlines() == [
        "PASS quickstart: a big order gets its total",
        "1 passed, 0 failed",
    ]


def test_version(meshline):
    r = meshline("--version")
    assert r.returncode == 0 and r.stdout.startswith("meshline ") and "Apache Beam" in r.stdout


def _wait_for(path: Path, text: str, count: int = 1, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = path.read_text() if path.exists() else ""
        if seen.count(text) >= count:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} x{count} not seen in time:\n{seen}")


def _watch(meshline_args: list[str], cwd: Path) -> tuple[subprocess.Popen, Path, Path]:
    exe = Path(sys.executable).parent / "meshline"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "meshline.cli"]
    out, err = cwd / "watch.out", cwd / "watch.err"
    proc = subprocess.Popen([*cmd, *meshline_args], cwd=cwd, stdout=out.open("w"), stderr=err.open("w"))
    return proc, out, err


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


WATCHED = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: w}
spec:
  sources: [{name: in, type: file, config: {path: input.jsonl}}]
  targets:
    - {name: out, type: file, config: {path: out}}
    - {name: rejects, type: file, config: {path: rejects}}
  triggers: [{name: all, target: out}]
  deadLetter: rejects
  tests:
    - name: passes through
      inputs: {in: [{type: t, source: s, id: "1"}]}
      expect: {out: [{id: "1"}]}
"""


def test_test_watch_runs_again_when_the_file_changes(tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text(WATCHED)
    proc, out, err = _watch(["test", "w.yaml", "--watch"], tmp_path)
    try:
        _wait_for(out, "1 passed, 0 failed")
        _wait_for(err, "watching")
        f.write_text(WATCHED.replace('expect: {out: [{id: "1"}]}', 'expect: {out: [{id: "2"}]}'))
        text = _wait_for(out, "0 passed, 1 failed")
        line = 1 + WATCHED.splitlines().index("    - name: passes through")
        assert f"FAIL w.yaml:{line}: w: passes through" in text
    finally:
        status = _stop(proc)
    assert status == 130


def test_run_watch_runs_again_when_an_input_changes(tmp_path):
    (tmp_path / "w.yaml").write_text(WATCHED)
    event = '{"specversion": "1.0", "type": "t", "source": "s", "id": "%d"}\n'
    (tmp_path / "input.jsonl").write_text(event % 1)
    proc, _, err = _watch(["run", "w.yaml", "--watch"], tmp_path)
    try:
        _wait_for(err, "watching")
        with (tmp_path / "input.jsonl").open("a") as fh:
            fh.write(event % 2)
        text = _wait_for(err, "w: done in", count=2)
        assert "changed: input.jsonl; running again" in text
    finally:
        status = _stop(proc)
    assert status == 130
    written = [
        json.loads(line) for p in (tmp_path / "out").rglob("*.jsonl") for line in p.read_text().splitlines()
    ]
    assert sorted(e["id"] for e in written) == ["1", "1", "2"]  # the second run read both lines


def test_run_quickstart_writes_outputs_and_summary(meshline, tmp_path):
    r = meshline("run", str(QUICKSTART), "--param", f"output={tmp_path}")
    assert r.returncode == 0, r.stderr
    big = rows_in(tmp_path / "big-orders")
    assert big and all(float(e["data"]["amount"]) > 100 and "total" in e["data"] for e in big)
    eu = rows_in(tmp_path / "eu-orders", "**/*.parquet")
    assert eu and all(row["type"] == "com.example.order.eu" for row in eu)
    rejects = rows_in(tmp_path / "dead-letters")
    stages = sorted(e["meshlineerrorstage"] for e in rejects)
    assert stages == ["decode", "decode", "filter"], rejects
    assert "cancelled: " in r.stdout
    assert "trigger" in r.stderr and "big-orders" in r.stderr  # the summary table
    assert "quickstart: outputs:" in r.stderr and f"  rejects (file): {tmp_path}/dead-letters" in r.stderr
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
