"""aws.sqs target against moto: binary/structured round trips, limits, FIFO dedup, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.harness import rows_in
from tests.integration.aws.support import Aws

pytestmark = pytest.mark.integration


def _events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {
            "specversion": "1.0",
            "id": f"e-{i}",
            "source": "/orders",
            "type": "order.created",
            "time": "2026-11-25T10:00:00Z",
            "subject": f"o{i}",
            "tenant": "acme",
            "data": {"n": i},
        }
        for i in range(25)
    ]
    events.append(
        {
            "specversion": "1.0",
            "id": "text",
            "source": "/t",
            "type": "t",
            "datacontenttype": "text/plain",
            "data": "hi",
        }
    )
    events.append(
        {"specversion": "1.0", "id": "bytes", "source": "/t", "type": "t", "data_base64": "AAEC/w=="}
    )
    events.append({"specversion": "1.0", "id": "nodata", "source": "/t", "type": "t"})
    many = {f"x{i}": str(i) for i in range(12)}  # more than SQS's 10 message attributes: sent structured
    events.append({"specversion": "1.0", "id": "many", "source": "/t", "type": "t", **many, "data": [1, 2]})
    events.append({"specversion": "1.0", "id": "big", "source": "/t", "type": "t", "data": "x" * 300_000})
    return events


def _spec(
    path: Path,
    aws: Aws,
    events: list[dict[str, Any]],
    queue: str,
    out: Path,
    config: str = "",
    delivery: str = "",
    endpoint: str = "",
) -> Path:
    data = path.with_suffix(".jsonl")
    data.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    path.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: sqs-target-it}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{data}"}}}}
  targets:
    - name: queue
      type: aws.sqs
      config: {{queue_url: "{queue}", endpoint_url: "{endpoint or aws.endpoint}", region: us-east-1 {config}}}
    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}
  triggers:
    - {{name: all, target: queue {delivery}}}
  deadLetter: dlq
""")
    return path


def _read_back(meshline, aws: Aws, queue: str, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Read the queue with the aws.sqs source: the events as Meshline sees them."""
    spec = tmp_path / "back.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: read-back}}
spec:
  sources:
    - name: q
      type: aws.sqs
      config: {{queue_url: "{queue}", endpoint_url: "{aws.endpoint}", region: us-east-1,
                wait_time: 1s, idle_timeout: 2s}}
  targets:
    - {{name: out, type: file, config: {{path: "{tmp_path}/back"}}}}
  triggers:
    - {{name: all, target: out}}
""")
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    return {e["id"]: e for e in rows_in(tmp_path / "back", "*.jsonl")}


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_events_round_trip_through_a_queue(meshline, aws, tmp_path, mode):
    queue = aws.queue()
    events = _events()
    out = tmp_path / "out"
    r = meshline(
        "run",
        str(_spec(tmp_path / "it.yaml", aws, events, queue, out, f", mode: {mode}")),
        "--runner",
        "direct",
    )
    assert r.returncode == 0, r.stderr
    (dead,) = rows_in(out / "dlq", "*.jsonl")
    assert dead["id"] == "big" and dead["meshlineerrorstage"] == "deliver"
    assert "exceeds the SQS limit of 262144 bytes" in dead["meshlineerror"]
    back = _read_back(meshline, aws, queue, tmp_path)
    assert back == {e["id"]: e for e in events if e["id"] != "big"}  # every other event, unchanged


def test_binary_mode_uses_message_attributes(meshline, aws, tmp_path):
    queue = aws.queue()
    events = _events()[:1]
    r = meshline(
        "run", str(_spec(tmp_path / "it.yaml", aws, events, queue, tmp_path / "out")), "--runner", "direct"
    )
    assert r.returncode == 0, r.stderr
    (m,) = aws.drain(queue)
    attrs = {k: v["StringValue"] for k, v in m["MessageAttributes"].items()}
    assert orjson.loads(m["Body"]) == {"n": 0}
    assert attrs == {
        "ce-specversion": "1.0",
        "ce-id": "e-0",
        "ce-source": "/orders",
        "ce-type": "order.created",
        "ce-time": "2026-11-25T10:00:00Z",
        "ce-subject": "o0",
        "ce-tenant": "acme",
    }


def test_fifo_group_and_replay_deduplication(meshline, aws, tmp_path):
    queue = aws.queue(fifo=True)
    events = _events()[:25]
    spec = _spec(tmp_path / "it.yaml", aws, events, queue, tmp_path / "out", ", message_group_id: tenant")
    for _ in range(2):  # the second run is a replay: SQS drops it by MessageDeduplicationId
        r = meshline("run", str(spec), "--runner", "direct")
        assert r.returncode == 0, r.stderr
    received = aws.drain(queue, visibility=60)
    assert [m["MessageAttributes"]["ce-id"]["StringValue"] for m in received] == [f"e-{i}" for i in range(25)]
    assert {m["Attributes"]["MessageGroupId"] for m in received} == {"acme"}


def test_missing_queue_dead_letters_at_once(meshline, aws, tmp_path):
    queue = aws.endpoint + "/123456789012/no-such-queue"
    r = meshline(
        "run",
        str(_spec(tmp_path / "it.yaml", aws, _events()[:3], queue, tmp_path / "out")),
        "--runner",
        "direct",
    )
    assert r.returncode == 0, r.stderr
    dead = rows_in(tmp_path / "out" / "dlq", "*.jsonl")
    assert sorted(e["id"] for e in dead) == ["e-0", "e-1", "e-2"]
    assert all(
        "NonExistentQueue" in e["meshlineerror"] and "attempts" not in e["meshlineerror"] for e in dead
    )


def test_unreachable_endpoint_is_retried_then_dead_lettered(meshline, aws, tmp_path):
    from tests.harness import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused, a transient error
    spec = _spec(
        tmp_path / "it.yaml",
        aws,
        _events()[:2],
        endpoint + "/123456789012/q",
        tmp_path / "out",
        delivery=", delivery: {retries: 2, backoff: {delay: 10ms}}",
        endpoint=endpoint,
    )
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    dead = rows_in(tmp_path / "out" / "dlq", "*.jsonl")
    assert sorted(e["id"] for e in dead) == ["e-0", "e-1"]
    assert all("(after 3 attempts)" in e["meshlineerror"] for e in dead), dead[0]["meshlineerror"]
