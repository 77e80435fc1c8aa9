"""aws.s3 source (notifications through SQS) and target (objects) against moto."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pyarrow.parquet as pq
import pytest

from meshline.connectors.formats import event_row, read_rows
from meshline.events import from_json_dict
from tests.harness import rows_in
from tests.integration.aws.support import Aws

pytestmark = pytest.mark.integration


def _read(folder: Path) -> list[dict[str, Any]]:
    return rows_in(folder)


# --------------------------------------------------------------------------- source


def test_notifications_become_one_event_per_record(meshline, aws, tmp_path):
    queue, bucket = aws.queue(), aws.bucket()
    aws.s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": aws.arn(queue), "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}
            ]
        },
    )  # S3 (and moto) sends an s3:TestEvent now: deleted, not delivered
    aws.s3.put_object(Bucket=bucket, Key="in/a.json", Body=b'{"x": 1}', ContentType="application/json")
    aws.s3.put_object(Bucket=bucket, Key="in/with space.txt", Body="héllo".encode(), ContentType="text/plain")
    aws.s3.put_object(Bucket=bucket, Key="in/big.bin", Body=bytes(range(256)) * 8)  # over max_content_bytes
    aws.s3.put_object(Bucket=bucket, Key="in/raw.bin", Body=b"\xff\xfe\x00")
    aws.s3.delete_object(Bucket=bucket, Key="in/raw.bin")
    aws.send(queue, [{"MessageBody": "not a notification"}])
    out = tmp_path / "out"
    spec = tmp_path / "it.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: s3-notifications}}
spec:
  sources:
    - name: uploads
      type: aws.s3
      config:
        queue_url: "{queue}"
        endpoint_url: "{aws.endpoint}"
        region: us-east-1
        wait_time: 1s
        idle_timeout: 3s
        read_content: true
        max_content_bytes: 1000
  targets:
    - {{name: out, type: file, config: {{path: "{out}/events"}}}}
    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}
  triggers:
    - {{name: all, target: out}}
  deadLetter: dlq
""")
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    events = _read(out / "events")
    by_subject = {(e["subject"], e["type"]): e for e in events}
    assert sorted(by_subject) == [
        ("in/a.json", "com.amazon.s3.objectcreated"),
        ("in/big.bin", "com.amazon.s3.objectcreated"),
        ("in/raw.bin", "com.amazon.s3.objectcreated"),
        ("in/raw.bin", "com.amazon.s3.objectremoved"),
        ("in/with space.txt", "com.amazon.s3.objectcreated"),  # decoded (S3 sends in/with+space.txt)
    ]
    assert {e["source"] for e in events} == {f"arn:aws:s3:::{bucket}"}
    assert len({e["id"] for e in events}) == 5 and all(e["id"].startswith(e["subject"] + "@") for e in events)
    a = by_subject[("in/a.json", "com.amazon.s3.objectcreated")]
    assert a["data"]["eventName"] == "ObjectCreated:Put" and a["data"]["s3"]["bucket"]["name"] == bucket
    assert a["data"]["content"] == {"x": 1}
    assert by_subject[("in/with space.txt", "com.amazon.s3.objectcreated")]["data"]["content"] == "héllo"
    assert "content" not in by_subject[("in/big.bin", "com.amazon.s3.objectcreated")]["data"]
    raw = by_subject[("in/raw.bin", "com.amazon.s3.objectcreated")]["data"]
    assert "NoSuchKey" in raw["content_error"]  # deleted before it was read: the event still arrives
    (dead,) = _read(out / "dlq")
    assert dead["meshlineerrorstage"] == "decode" and "not an S3 event notification" in dead["meshlineerror"]
    assert dead["data"] == "not a notification"
    assert aws.depth(queue) == 0  # the test event too


def test_notifications_through_sns_are_unwrapped():
    from meshline.connectors.aws.s3_source import S3SourceConfig, _Convert

    record = {
        "eventName": "ObjectCreated:Copy",
        "eventTime": "2026-11-25T10:00:00.000Z",
        "s3": {"bucket": {"name": "b"}, "object": {"key": "k", "sequencer": "0055AED6DCD90281E5"}},
    }
    sns = {"Type": "Notification", "Message": orjson.dumps({"Records": [record, record]}).decode()}
    message = {"MessageId": "m", "ReceiptHandle": "r", "Body": orjson.dumps(sns).decode()}
    convert = _Convert(S3SourceConfig(queue_url="http://x/1/q"), "s")
    first, last = convert("arn:aws:sqs:us-east-1:1:q", message)
    assert first.event.attributes["id"] == "k@0055AED6DCD90281E5" and first.event.source == "arn:aws:s3:::b"
    assert (first.ack_id, last.ack_id) == ("", "r")  # deleted only when its last record is committed


# --------------------------------------------------------------------------- target


def _events(n: int = 40) -> list[dict[str, Any]]:
    return [
        {
            "specversion": "1.0",
            "id": f"e-{i}",
            "source": "/orders",
            "type": "order.created" if i % 2 else "order.paid",
            "time": "2026-11-25T10:15:00Z",
            "tenant": "acme",
            "data": {"n": i, "items": [1, 2]},
        }
        for i in range(n)
    ]


def _target_spec(path: Path, aws: Aws, events: list[dict[str, Any]], targets: str, out: Path) -> Path:
    data = path.with_suffix(".jsonl")
    data.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    names = [line.split("name:")[1].split(",")[0].strip() for line in targets.splitlines() if "name:" in line]
    triggers = "\n".join(f"    - {{name: t-{n}, target: {n}}}" for n in names)
    path.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: s3-target-it}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{data}"}}}}
  targets:
{targets}
    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}
  triggers:
{triggers}
  deadLetter: dlq
""")
    return path


def test_parquet_and_avro_objects_match_the_events_and_a_replay_overwrites(meshline, aws, tmp_path):
    bucket = aws.bucket()
    events = _events()
    common = f'bucket: {bucket}, endpoint_url: "{aws.endpoint}", region: us-east-1'
    pq_prefix = "p/{type}/{yyyy}/{mm}"
    targets = f"""    - {{name: pq, type: aws.s3,
        config: {{{common}, prefix: "{pq_prefix}", format: parquet}}}}
    - {{name: av, type: aws.s3, config: {{{common}, prefix: a, format: avro, max_events: 15}}}}"""
    spec = _target_spec(tmp_path / "it.yaml", aws, events, targets, tmp_path / "out")
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    keys = aws.keys(bucket)
    expected = sorted((event_row(from_json_dict(e)) for e in events), key=lambda row: str(row["id"]))

    parquet_keys = [k for k in keys if k.startswith("p/")]
    assert {k.rsplit("/", 1)[0] for k in parquet_keys} == {"p/order.created/2026/11", "p/order.paid/2026/11"}
    rows = []
    for k in parquet_keys:
        table = pq.read_table(io.BytesIO(aws.s3.get_object(Bucket=bucket, Key=k)["Body"].read()))
        rows += table.to_pylist()
    assert sorted(rows, key=lambda row: row["id"]) == expected

    avro_keys = [k for k in keys if k.startswith("a/")]
    assert len(avro_keys) == 3  # 40 events, at most 15 per object
    rows = []
    for k in avro_keys:
        rows += list(fastavro.reader(io.BytesIO(aws.s3.get_object(Bucket=bucket, Key=k)["Body"].read())))
    assert sorted(rows, key=lambda row: row["id"]) == expected
    assert orjson.loads(expected[0]["data"]) == {"n": 0, "items": [1, 2]}
    assert orjson.loads(expected[0]["extensions"]) == {"tenant": "acme"}

    r = meshline("run", str(spec), "--runner", "direct")  # a replay of the same input
    assert r.returncode == 0, r.stderr
    assert aws.keys(bucket) == keys  # overwritten, not duplicated


def test_large_objects_are_multipart_uploads(meshline, aws, tmp_path):
    bucket = aws.bucket()
    events = [
        {"specversion": "1.0", "id": f"big-{i}", "source": "/s", "type": "t", "data": "x" * 1_000_000}
        for i in range(7)
    ]
    common = f'bucket: {bucket}, endpoint_url: "{aws.endpoint}", region: us-east-1'
    sizes = "multipart_threshold: 5242880, multipart_chunk: 5242880"
    targets = f"""    - {{name: lake, type: aws.s3, config: {{{common}, format: jsonl, {sizes}}}}}"""
    r = meshline(
        "run",
        str(_target_spec(tmp_path / "it.yaml", aws, events, targets, tmp_path / "out")),
        "--runner",
        "direct",
    )
    assert r.returncode == 0, r.stderr
    (key,) = aws.keys(bucket)
    head = aws.s3.head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-2")  # two parts: a multipart upload
    assert head["ContentType"] == "application/x-ndjson"
    rows = read_rows("jsonl", aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert sorted(r["id"] for r in rows) == [f"big-{i}" for i in range(7)]


def test_missing_bucket_dead_letters_with_the_reason(meshline, aws, tmp_path):
    common = f'endpoint_url: "{aws.endpoint}", region: us-east-1'
    targets = f"""    - {{name: lake, type: aws.s3, config: {{bucket: no-such-bucket, {common}}}}}"""
    out = tmp_path / "out"
    r = meshline(
        "run", str(_target_spec(tmp_path / "it.yaml", aws, _events(5), targets, out)), "--runner", "direct"
    )
    assert r.returncode == 0, r.stderr
    dead = _read(out / "dlq")
    assert sorted(e["id"] for e in dead) == [f"e-{i}" for i in range(5)]
    assert all(e["meshlineerrorstage"] == "deliver" for e in dead)
    assert all("bucket 'no-such-bucket' does not exist (NoSuchBucket)" in e["meshlineerror"] for e in dead)


def test_a_redelivery_after_a_crash_is_not_written_twice(aws):
    """Two runs with the same labels, as a rerun after a crash: the second gets 40 of the first's events
    again, grouped differently (a queue redelivering what was stored but not yet deleted)."""
    import apache_beam as beam

    from meshline.connectors.aws.s3_target import S3TargetConfig, WriteToS3
    from meshline.events import CloudEvent

    bucket = aws.bucket()
    config = S3TargetConfig(bucket=bucket, prefix="lake/{type}", format="parquet", endpoint_url=aws.endpoint)
    for ids in (range(0, 100), range(60, 130)):
        events = [CloudEvent({"specversion": "1.0", "type": "t", "source": "q", "id": str(i)}) for i in ids]
        with beam.Pipeline() as p:
            _ = (
                p
                | "Create" >> beam.Create(events, reshuffle=False)
                | "Target[lake]" >> WriteToS3(config, target_name="lake", redelivering=True, integration="it")
            )
    rows = [r for rs in aws.rows(bucket, "lake/").values() for r in rs]
    assert sorted(int(r["id"]) for r in rows) == list(range(130))
    ledger = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket, Prefix="lake/.meshline/")["Contents"]]
    assert len(ledger) == len(aws.keys(bucket, "lake/"))  # one entry per object
