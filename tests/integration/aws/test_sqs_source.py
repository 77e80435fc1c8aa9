"""aws.sqs source against moto: events, pass-through, deletion after commit, visibility, FIFO order."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.harness import rows_in
from tests.integration.aws.support import Aws

pytestmark = pytest.mark.integration


def _spec(
    path: Path, aws: Aws, queue: str, out: Path, extra: str = "idle_timeout: 3s", steps: str = ""
) -> Path:
    path.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: sqs-it}}
spec:
  sources:
    - name: in
      type: aws.sqs
      config:
        queue_url: "{queue}"
        endpoint_url: "{aws.endpoint}"
        region: us-east-1
        wait_time: 1s
        {extra}
  transformations:
    - name: slow
      type: python
      config:
        code: |
          import time
          def handle(event):
              time.sleep(0.4)
              return event
  targets:
    - {{name: out, type: file, config: {{path: "{out}/events"}}}}
    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}
  triggers:
    - {{name: all, target: out, steps: [{steps}]}}
  deadLetter: dlq
""")
    return path


def _read(folder: Path) -> list[dict[str, Any]]:
    return rows_in(folder)


def _attr(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def test_messages_become_events_and_are_deleted(meshline, aws, tmp_path):
    queue = aws.queue()
    plain = aws.send(
        queue,
        [
            {
                "MessageBody": orjson.dumps({"n": i}).decode(),
                "MessageAttributes": {
                    "origin": _attr("shop"),
                    "Bad.Name": _attr("x"),
                    "Count": {"DataType": "Number", "StringValue": "7"},
                },
            }
            for i in range(20)
        ]
        + [{"MessageBody": "plain text, not JSON"}],
    )
    structured = {
        "specversion": "1.0",
        "id": "s-1",
        "source": "/app",
        "type": "app.created",
        "data": {"a": 1},
    }
    aws.send(
        queue,
        [
            {"MessageBody": orjson.dumps(structured).decode()},
            {  # binary mode, ce- attributes
                "MessageBody": '{"b": 2}',
                "MessageAttributes": {
                    "ce-specversion": _attr("1.0"),
                    "ce-id": _attr("b-1"),
                    "ce-source": _attr("/bin"),
                    "ce-type": _attr("app.binary"),
                    "ce-tenant": _attr("acme"),
                    "content-type": _attr("application/json"),
                },
            },
            {  # binary mode, ce_ attributes
                "MessageBody": "hello",
                "MessageAttributes": {
                    "ce_specversion": _attr("1.0"),
                    "ce_id": _attr("b-2"),
                    "ce_source": _attr("/bin"),
                    "ce_type": _attr("app.binary"),
                    "content-type": _attr("text/plain"),
                },
            },
            {
                "MessageBody": '{"specversion": "1.0", "id": "broken"}'
            },  # claims to be a CloudEvent: dead letter
        ],
    )
    out = tmp_path / "out"
    r = meshline("run", str(_spec(tmp_path / "it.yaml", aws, queue, out)), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    events = {e["id"]: e for e in _read(out / "events")}
    arn = aws.arn(queue)
    wrapped = [events[i] for i in plain]
    assert all(e["type"] == "com.amazon.sqs.message" and e["source"] == arn for e in wrapped)
    assert [e["data"] for e in wrapped[:20]] == [{"n": i} for i in range(20)]
    assert wrapped[20]["data"] == "plain text, not JSON"
    assert all(e["origin"] == "shop" and e["count"] == "7" and "bad.name" not in e for e in wrapped[:20])
    assert all(e["time"].endswith("Z") for e in wrapped)
    assert events["s-1"] == structured
    assert events["b-1"]["data"] == {"b": 2} and events["b-1"]["tenant"] == "acme"
    assert events["b-1"]["source"] == "/bin" and events["b-1"]["type"] == "app.binary"
    assert events["b-2"]["data"] == "hello" and events["b-2"]["datacontenttype"] == "text/plain"
    assert len(events) == 24
    (dead,) = _read(out / "dlq")
    assert (
        dead["meshlineerrorstage"] == "decode"
        and "missing required attribute 'source'" in dead["meshlineerror"]
    )
    assert dead["data"] == '{"specversion": "1.0", "id": "broken"}'
    assert aws.depth(queue) == 0


def test_a_failed_run_deletes_nothing(meshline, aws, tmp_path):
    queue = aws.queue(VisibilityTimeout="2")
    ids = aws.send(queue, [{"MessageBody": orjson.dumps({"n": i}).decode()} for i in range(15)])
    # Neither the target nor the dead-letter target can write (their folder is a file): the
    # bundle fails and the run with it. (A crashing python step is a dead letter since steps run
    # in a child process of their own.)
    blocker = tmp_path / "out"
    blocker.write_text("a file where the targets want a folder")
    spec = _spec(tmp_path / "it.yaml", aws, queue, blocker, steps="slow")
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 1 and "run failed" in r.stderr and "Traceback" not in r.stderr, r.stderr
    time.sleep(3)  # past the visibility timeout (last extended just before the run ended)
    assert sorted(m["MessageId"] for m in aws.drain(queue)) == sorted(ids)


def test_visibility_is_extended_for_slow_bundles(meshline, aws, tmp_path):
    """Bundles of 10 take 4s; the queue's visibility timeout is 2s. No message is delivered twice."""
    queue = aws.queue(VisibilityTimeout="2")
    ids = aws.send(queue, [{"MessageBody": orjson.dumps({"n": i}).decode()} for i in range(30)])
    out = tmp_path / "out"
    spec = _spec(
        tmp_path / "it.yaml", aws, queue, out, extra="idle_timeout: 3s\n        batch: 10", steps="slow"
    )
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    delivered = [e["id"] for e in _read(out / "events")]
    assert sorted(delivered) == sorted(ids)  # each exactly once: none became visible again meanwhile
    assert aws.depth(queue) == 0


def test_max_events_ends_the_run_and_leaves_the_rest(meshline, aws, tmp_path):
    queue = aws.queue(VisibilityTimeout="60")
    ids = aws.send(queue, [{"MessageBody": orjson.dumps({"n": i}).decode()} for i in range(40)])
    out = tmp_path / "out"
    r = meshline(
        "run", str(_spec(tmp_path / "it.yaml", aws, queue, out, extra="max_events: 12")), "--runner", "direct"
    )
    assert r.returncode == 0, r.stderr
    delivered = {e["id"] for e in _read(out / "events")}
    assert len(delivered) == 12
    # Messages received but not delivered were released (visible at once, not after 60s).
    left = {m["MessageId"] for m in aws.drain(queue)}
    assert left == set(ids) - delivered


def test_fifo_queue_keeps_order_per_group(meshline, aws, tmp_path):
    source = aws.queue(fifo=True, ContentBasedDeduplication="true")
    target = aws.queue(fifo=True)
    entries = [
        {"MessageBody": orjson.dumps({"group": g, "seq": s}).decode(), "MessageGroupId": g}
        for s in range(15)
        for g in ("a", "b", "c")
    ]
    aws.send(source, entries)
    spec = tmp_path / "fifo.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: fifo-it}}
spec:
  sources:
    - name: in
      type: aws.sqs
      config: {{queue_url: "{source}", endpoint_url: "{aws.endpoint}", region: us-east-1,
                wait_time: 1s, idle_timeout: 3s, batch: 7}}
  targets:
    - name: out
      type: aws.sqs
      config: {{queue_url: "{target}", endpoint_url: "{aws.endpoint}", region: us-east-1}}
  triggers:
    - {{name: all, target: out}}
""")
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    received = aws.drain(target, visibility=60)
    by_group: dict[str, list[int]] = {}
    for m in received:
        body = orjson.loads(m["Body"])
        assert m["Attributes"]["MessageGroupId"] == body["group"]  # the source's group, kept by the target
        by_group.setdefault(body["group"], []).append(body["seq"])
    assert by_group == {g: list(range(15)) for g in ("a", "b", "c")}
    assert aws.depth(source) == 0


def test_streaming_on_prism_writes_windows_and_deletes(meshline, aws, tmp_path):
    queue, bucket = aws.queue(), aws.bucket()
    ids = aws.send(queue, [{"MessageBody": orjson.dumps({"n": i}).decode()} for i in range(60)])
    spec = tmp_path / "stream.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: sqs-stream}}
spec:
  sources:
    - name: in
      type: aws.sqs
      config: {{queue_url: "{queue}", endpoint_url: "{aws.endpoint}", region: us-east-1,
                wait_time: 1s, idle_timeout: 5s}}
  targets:
    - name: lake
      type: aws.s3
      config: {{bucket: {bucket}, prefix: "events/{{yyyy}}/{{mm}}/{{dd}}", format: jsonl, window: 2s,
                endpoint_url: "{aws.endpoint}", region: us-east-1}}
  triggers:
    - {{name: all, target: lake}}
""")
    r = meshline("run", str(spec), timeout=600)  # no --runner: an unbounded source streams on Prism
    assert r.returncode == 0, r.stderr
    assert "prism" in r.stderr
    rows = [row for rows in aws.rows(bucket).values() for row in rows]
    missing = set(ids) - {row["id"] for row in rows}
    assert not missing, (len(missing), aws.depth(queue), r.stderr[-3000:])
    assert sorted(row["id"] for row in rows) == sorted(ids)
    assert all("/part-2" in key for key in aws.keys(bucket))  # window-stamped object names
    assert aws.depth(queue) == 0
