"""``--format json`` and ``--log-format json``: the shapes docs/cli.md documents, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshline.cli import main
from meshline.run import use_json_logs

ROOT = Path(__file__).resolve().parents[2]

RUN = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: gen}
spec:
  parameters:
    - {name: token, secret: true, required: true}
  sources:
    - {name: in, type: generate, config: {count: 5, event: {type: t, data: {n: "{n}"}}}}
  targets:
    - {name: out, type: file, config: {path: "${env.OUT}"}}
    - {name: hook, type: http, config: {url: "http://app:${params.token}@127.0.0.1:9/x"}}
    - {name: rejects, type: file, config: {path: "${env.OUT}-rejects"}}
  triggers:
    - {name: odd, filters: [{jq: '(.data.n | tonumber) % 2 == 1'}], target: out}
  deadLetter: rejects
"""


@pytest.fixture(autouse=True)
def _text_logs():
    yield
    use_json_logs(False)  # main() switches the process to JSON logs for --log-format json


def test_validate_json_lists_files_integrations_and_located_problems(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: bad}\n"
        "spec:\n  sources: [{name: in, type: file, config: {path: x}}]\n"
        "  targets: [{name: out, type: file, config: {path: o, format: csv}}]\n"
        "  triggers: [{name: t, target: out}]\n"
    )
    good = ROOT / "pipelines" / "quickstart.yaml"
    warned = tmp_path / "warned.yaml"  # valid, but failures would have nowhere to go
    warned.write_text(bad.read_text().replace("name: bad", "name: warned").replace(", format: csv", ""))
    assert main(["validate", "--format", "json", str(good), str(bad), str(warned)]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    doc = json.loads(captured.out)
    assert doc["valid"] is False
    assert [(f["file"], f["valid"], f["integrations"]) for f in doc["files"]] == [
        (str(good), True, ["quickstart"]),
        (str(bad), False, []),
        (str(warned), True, ["warned"]),
    ]
    errors = [p for p in doc["files"][1]["problems"] if p["severity"] == "error"]
    assert errors and set(errors[0]) == {"file", "line", "column", "severity", "message"}
    assert errors[0]["file"] == str(bad) and errors[0]["line"] == 6 and "format" in errors[0]["message"]
    (warning,) = doc["files"][2]["problems"]
    assert warning["severity"] == "warning" and "dead-letter" in warning["message"] and warning["line"] == 7


def test_run_json_summary_and_json_logs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    f = tmp_path / "gen.yaml"
    f.write_text(RUN)
    status = main(
        ["run", str(f), "--param", "token=hunter2-secret", "--format", "json", "--log-format", "json"]
    )
    assert status == 0
    captured = capsys.readouterr()
    assert "hunter2-secret" not in captured.out + captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    (run,) = summary["integrations"]
    assert {k: run[k] for k in ("name", "file", "runner", "status")} == {
        "name": "gen",
        "file": str(f),
        "runner": "direct",
        "status": "succeeded",
    }
    rows = {(r["stage"], r["name"]): r for r in run["stages"]}
    assert rows[("source", "in")] == {"stage": "source", "name": "in", "in": 5, "out": 5, "dead_lettered": 0}
    assert rows[("trigger", "odd")]["matched"] == 2 and rows[("target", "out")]["out"] == 2
    assert run["counters"]["target.out.delivered"] == 2
    where = {o["target"]: o for o in run["outputs"]}
    assert where["out"] == {"target": "out", "type": "file", "where": str(tmp_path / "out")}
    assert where["hook"]["where"] == "http://app:***@127.0.0.1:9/x"
    # every stderr line is one JSON object
    records = [json.loads(line) for line in captured.err.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    messages = [r["message"] for r in records]
    assert "gen: summary" in messages and "gen: outputs" in messages
    outputs = next(r for r in records if r["message"] == "gen: outputs")["outputs"]
    assert outputs == run["outputs"]


def test_run_text_prints_where_outputs_went(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    f = tmp_path / "gen.yaml"
    f.write_text(RUN)
    assert main(["run", str(f), "--param", "token=hunter2-secret"]) == 0
    err = capsys.readouterr().err
    assert "gen: outputs:" in err
    assert f"  out (file): {tmp_path / 'out'}" in err
    assert "  hook (http): http://app:***@127.0.0.1:9/x" in err
    assert "hunter2-secret" not in err


# --------------------------------------------------------------------------- documented shapes

# values whose keys are data (counter names, event fields), not part of the shape
_OPAQUE = {"counters", "expected", "actual", "inputs"}
# keys that only some entries have
_OPTIONAL = {"error", "job", "cesql_errors", "matched", "id", "fields", "expected", "actual"}


def _documented(kind: str) -> object:
    lines = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- example: output {kind} -->") + 2
    end = lines.index("```", start)
    return json.loads("\n".join(lines[start:end]))


def _keys(value: object, path: tuple[str, ...] = (), out: dict | None = None) -> dict:
    out = {} if out is None else out
    if isinstance(value, dict):
        out.setdefault(path, set()).update(value)
        for k, v in value.items():
            if k not in _OPAQUE:
                _keys(v, (*path, k), out)
    elif isinstance(value, list):
        for v in value:
            _keys(v, (*path, "[]"), out)
    return out


def _same_shape(documented: object, actual: object) -> None:
    doc, got = _keys(documented), _keys(actual)
    for path, keys in got.items():
        assert path in doc, f"{'/'.join(path)}: not documented"
        assert keys <= doc[path], f"{'/'.join(path)}: undocumented keys {sorted(keys - doc[path])}"
        missing = doc[path] - keys - _OPTIONAL
        assert not missing, f"{'/'.join(path)}: documented but not printed: {sorted(missing)}"


def test_the_json_outputs_have_the_documented_shapes(tmp_path, capsys, monkeypatch):
    from tests.unit.test_cli_test import FILE

    orders = tmp_path / "orders.yaml"
    stale = FILE.replace("out: []   # was", 'out: [{id: "3"}, {id: "7"}]   # was')
    stale = stale.replace('data: {amount: "5"}}]', 'data: {amount: "500"}}]')  # 3 matches, 7 is missing
    two = '- {type: order, source: shop, id: "2", data: {amount: "n/a"}}'
    orders.write_text(stale.replace(two, two + "\n          " + two.replace('"2"', '"8"')))  # 8: unexpected
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: b}\nspec: {sources: 3}\n"
    )

    main(["validate", "--format", "json", str(ROOT / "pipelines" / "quickstart.yaml"), str(broken)])
    _same_shape(_documented("validate"), json.loads(capsys.readouterr().out))

    main(["test", "--format", "json", str(orders), str(broken)])
    report = json.loads(capsys.readouterr().out)
    kinds = {e["kind"] for t in report["tests"] for target in t["targets"] for e in target["events"]}
    assert kinds == {"differs", "missing", "unexpected"}  # every kind of difference is covered
    _same_shape(_documented("test"), report)

    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    f = tmp_path / "gen.yaml"
    f.write_text(RUN)
    main(["run", str(f), "--param", "token=t0ken-value", "--format", "json"])
    _same_shape(_documented("run"), json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
