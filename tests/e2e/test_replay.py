"""`meshline replay`: dead letters go back where they failed, once, and nowhere else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest

from tests.harness import rows_in

pytestmark = pytest.mark.e2e

BUGGY = """
def handle(event):
    if event.data["n"] % 10 == 0:
        raise ValueError("bug: n = %d" % event.data["n"])
    event.data["fixed"] = True
    return event
"""
FIXED = """
def handle(event):
    event.data["fixed"] = True
    return event
"""


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _ids(folder: Path) -> list[str]:
    return sorted(row["id"] for row in rows_in(folder))


def _summary(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if " read, " in line)


def test_replay_sends_exactly_the_failed_events_through_their_trigger_once(meshline, tmp_path):
    src = tmp_path / "in.jsonl"
    with src.open("wb") as fh:
        for n in range(1000):
            event = {"specversion": "1.0", "id": f"e{n}", "source": "/orders", "type": "order", "seq": n}
            fh.write(orjson.dumps({**event, "data": {"n": n}}) + b"\n")
    module = tmp_path / "fixer.py"
    module.write_text(BUGGY)
    out = tmp_path / "out"
    spec = tmp_path / "it.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: replayed}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{src}"}}}}
  transformations:
    - {{name: fix, type: python, config: {{function: "fixer:handle"}}}}
  targets:
    - {{name: fixed, type: file, config: {{path: "{out}/fixed"}}}}
    - {{name: copies, type: file, config: {{path: "{out}/copies"}}}}
    - {{name: rejects, type: file, config: {{path: "{out}/rejects"}}}}
  triggers:
    - {{name: fixing, steps: [fix], target: fixed}}
    - {{name: copy, target: copies}}
  deadLetter: rejects
""")
    r = meshline("run", str(spec))
    assert r.returncode == 0, r.stderr
    failed = sorted(f"e{n}" for n in range(0, 1000, 10))
    rejects = rows_in(out / "rejects")
    assert sorted(row["id"] for row in rejects) == failed
    assert {(row["meshlineerrorstage"], row["meshlinetrigger"]) for row in rejects} == {
        ("transform", "fixing")
    }
    assert len(_ids(out / "fixed")) == 900 and len(_ids(out / "copies")) == 1000

    # --dry-run: one line per dead letter saying where it goes; nothing changes
    before = _snapshot(out)
    r = meshline("replay", str(spec), "--from", "rejects", "--dry-run")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 100
    assert all(
        line.endswith("transform in fixing: replay through trigger fixing -> target fixed") for line in lines
    )
    assert "100 read, 100 selected, 100 would be replayed, 0 not replayable; nothing was sent" in r.stderr
    r = meshline(
        "replay", str(spec), "--from", "rejects", "--dry-run", "--where", "seq >= 700", "--format", "json"
    )
    assert r.returncode == 0, r.stderr
    shown = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(d["id"] for d in shown) == sorted(f"e{n}" for n in range(700, 1000, 10))
    assert {(d["route"], tuple(d["triggers"]), tuple(d["targets"])) for d in shown} == {
        ("trigger", ("fixing",), ("fixed",))
    }
    assert _snapshot(out) == before

    # the bug fixed: --where replays 30 of them, then the other 70; each reaches `fixed` once
    module.write_text(FIXED)
    r = meshline(
        "replay", str(spec), "--from", "rejects", "--where", "seq >= 700 AND meshlinetrigger = 'fixing'"
    )
    assert r.returncode == 0, r.stderr
    assert (
        "100 read, 30 selected, 30 replayed, 30 delivered, 0 dead-lettered again, 0 not replayable"
        in r.stderr
    )
    r = meshline("replay", str(spec), "--from", "rejects", "--where", "seq < 700", "--format", "json")
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout.splitlines()[-1])
    assert (counts["selected"], counts["replayed"], counts["delivered"], counts["ok"]) == (70, 70, 70, True)
    fixed = rows_in(out / "fixed")
    assert sorted(row["id"] for row in fixed) == sorted(f"e{n}" for n in range(1000))  # each once
    replayed = [row for row in fixed if row["id"] in set(failed)]
    assert all(
        row["data"]["fixed"] is True and not any(k.startswith("meshline") for k in row) for row in replayed
    )
    assert len(_ids(out / "copies")) == 1000  # the other trigger got nothing new
    assert sorted(row["id"] for row in rows_in(out / "rejects")) == failed  # nothing new dead-lettered


def test_replay_of_delivery_failures_writes_to_the_target_without_running_steps(meshline, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b"".join(
            orjson.dumps({"specversion": "1.0", "id": f"d{n}", "source": "/s", "type": "t", "data": {}})
            + b"\n"
            for n in range(20)
        )
    )
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the target wants a folder")
    spec = tmp_path / "deliver.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: delivering}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{src}"}}}}
  transformations:
    - {{name: hop, type: jq, config: {{program: '.data.hops = ((.data.hops // 0) + 1)'}}}}
  targets:
    - {{name: out, type: file, config: {{path: "{blocker}/out"}}}}
    - {{name: rejects, type: file, config: {{path: "{tmp_path}/rejects"}}}}
  triggers:
    - {{name: stamp, steps: [hop], target: out, delivery: {{retries: 0}}}}
  deadLetter: rejects
""")
    r = meshline("run", str(spec))
    assert r.returncode == 0, r.stderr
    rejects = rows_in(tmp_path / "rejects")
    assert len(rejects) == 20
    assert {(row["meshlineerrorstage"], row["meshlinetrigger"], row["data"]["hops"]) for row in rejects} == {
        ("deliver", "stamp", 1)
    }
    # Still failing: dead-lettered again with the same attributes, and exit 0 (all accounted for).
    shutil.copytree(tmp_path / "rejects", tmp_path / "rejects-before")
    r = meshline("replay", str(spec), "--from", "rejects", "--dry-run")
    assert r.stdout.splitlines()[0].endswith("deliver in stamp: replay to target out (no steps)")
    r = meshline("replay", str(spec), "--from", "rejects")
    assert r.returncode == 0, r.stderr
    assert "20 read, 20 selected, 20 replayed, 0 delivered, 20 dead-lettered again" in _summary(r.stderr)
    again = rows_in(tmp_path / "rejects")
    assert {(row["meshlineerrorstage"], row["meshlinetrigger"], row["data"]["hops"]) for row in again} == {
        ("deliver", "stamp", 1)
    }
    # The target fixed: each event is written once, as it was (its step did not run again).
    blocker.unlink()
    shutil.rmtree(tmp_path / "rejects")  # the dead letters as the first run left them
    (tmp_path / "rejects-before").rename(tmp_path / "rejects")
    r = meshline("replay", str(spec), "--from", "rejects", "--where", "meshlineerrorstage = 'deliver'")
    assert r.returncode == 0, r.stderr
    out = rows_in(blocker / "out")
    assert sorted(row["id"] for row in out) == sorted({row["id"] for row in again})
    assert {row["data"]["hops"] for row in out} == {1}
    assert not any(k.startswith("meshline") for row in out for k in row)


def test_replay_refuses_what_it_cannot_read_or_route(meshline, tmp_path):
    spec = tmp_path / "it.yaml"
    spec.write_text("""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: refusing}
spec:
  sources:
    - {name: in, type: generate, config: {count: 1, event: {type: t, source: /g}}}
  targets:
    - {name: shown, type: log}
  triggers:
    - {name: all, target: shown}
""")
    r = meshline("replay", str(spec), "--from", "nowhere")
    assert r.returncode == 2 and "no target named 'nowhere'" in r.stderr and "(targets: shown)" in r.stderr
    r = meshline("replay", str(spec), "--from", "shown")
    assert r.returncode == 1
    assert "supported: file, aws.s3, google.storage, azure.datalake, kafka" in r.stderr
    assert "Traceback" not in r.stderr
    r = meshline("replay", str(spec), "--from", "shown", "--where", "id ===")
    assert r.returncode == 2 and "--where" in r.stderr
