"""`meshline replay --from` a Kafka dead-letter topic: read up to the end offsets taken first."""

from __future__ import annotations

import json

import orjson
import pytest

from tests.harness import rows_in
from tests.integration.kafka.support import drain, end_offsets, new_topic

pytestmark = pytest.mark.integration

BUGGY = """
def handle(event):
    if event.data["n"] % 10 == 0:
        raise ValueError("bug")
    return event
"""


def test_replay_from_a_kafka_dead_letter_topic(meshline, kafka, tmp_path):
    topic = new_topic(kafka.bootstrap, partitions=2, prefix="dlq")
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b"".join(
            orjson.dumps({"specversion": "1.0", "id": f"k{n}", "source": "/k", "type": "t", "data": {"n": n}})
            + b"\n"
            for n in range(200)
        )
    )
    module = tmp_path / "fixer.py"
    module.write_text(BUGGY)
    out = tmp_path / "out"
    spec = tmp_path / "kafka.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: kafka-replay}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{src}"}}}}
  transformations:
    - {{name: fix, type: python, config: {{function: "fixer:handle"}}}}
  targets:
    - {{name: fixed, type: file, config: {{path: "{out}/fixed"}}}}
    - {{name: copies, type: file, config: {{path: "{out}/copies"}}}}
    - {{name: dlq, type: kafka, config: {{bootstrap_servers: "{kafka.bootstrap}", topic: {topic}}}}}
  triggers:
    - {{name: fixing, steps: [fix], target: fixed}}
    - {{name: copy, target: copies}}
  deadLetter: dlq
""")
    r = meshline("run", str(spec))
    assert r.returncode == 0, r.stderr
    assert sum(end_offsets(kafka.bootstrap, topic).values()) == 20
    failed = sorted(f"k{n}" for n in range(0, 200, 10))

    r = meshline("replay", str(spec), "--from", "dlq", "--dry-run", "--format", "json")
    assert r.returncode == 0, r.stderr
    shown = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(d["id"] for d in shown) == failed
    assert {(d["stage"], d["route"], tuple(d["targets"])) for d in shown} == {
        ("transform", "trigger", ("fixed",))
    }
    assert sum(end_offsets(kafka.bootstrap, topic).values()) == 20  # the dry run sent nothing

    # Still buggy: the 20 are dead-lettered again; the replay read only the 20 there at its start.
    r = meshline("replay", str(spec), "--from", "dlq")
    assert r.returncode == 0, r.stderr
    assert (
        "20 read, 20 selected, 20 replayed, 0 delivered, 20 dead-lettered again, 0 not replayable" in r.stderr
    )
    records = drain(kafka.bootstrap, topic, expect=40)
    assert len(records) == 40
    headers = [dict(m.headers()) for m in records]
    assert {(h["ce_meshlineerrorstage"], h["ce_meshlinetrigger"]) for h in headers} == {
        (b"transform", b"fixing")
    }

    # Fixed: every dead letter in the topic (each failed event twice now) reaches `fixed`, nothing else.
    module.write_text("def handle(event):\n    return event\n")
    r = meshline("replay", str(spec), "--from", "dlq", "--where", "meshlinetrigger = 'fixing'")
    assert r.returncode == 0, r.stderr
    assert "40 read, 40 selected, 40 replayed, 40 delivered, 0 dead-lettered again" in r.stderr
    fixed = sorted(row["id"] for row in rows_in(out / "fixed"))
    assert fixed == sorted([f"k{n}" for n in range(200) if n % 10] + failed * 2)
    assert len(rows_in(out / "copies")) == 200
    assert sum(end_offsets(kafka.bootstrap, topic).values()) == 40
