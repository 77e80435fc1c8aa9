"""20,000 SQS messages → filter → transform → S3 parquet, and the same run killed with SIGKILL.

Bad input a user recognises: 1% of the bodies are not JSON (the jq step cannot
read ``.data.amount`` from text: dead letter, stage ``transform``) and 1% carry
a 70 KB note, over the data lake's ``max_event_bytes: 65536`` row limit (dead
letter, stage ``deliver``, with the size). Dead letters go to S3 as jsonl.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from tests.harness import component, integration, meshline_exe, trigger
from tests.integration.aws.support import Aws, Feeder

pytestmark = pytest.mark.integration

TOTAL = 20_000
BATCH = 200  # messages per bundle: the most a crash can duplicate (written, not yet deleted)


def _entries(total: int = TOTAL) -> tuple[list[dict[str, Any]], set[int], set[int]]:
    entries: list[dict[str, Any]] = []
    not_json: set[int] = set()
    too_big: set[int] = set()
    for i in range(total):
        if i % 100 == 17:
            not_json.add(i)
            body = f"order {i}: 3 x widget (free text, not JSON)"
        elif i % 100 == 58:
            too_big.add(i)
            body = orjson.dumps({"order": i, "amount": 5, "qty": 1, "note": "x" * 70_000}).decode()
        else:
            body = orjson.dumps(
                {"order": i, "amount": i % 50, "qty": 1 + i % 3, "customer": f"c{i % 97}"}
            ).decode()
        entries.append(
            {"MessageBody": body, "MessageAttributes": {"seq": {"DataType": "Number", "StringValue": str(i)}}}
        )
    return entries, not_json, too_big


def _spec(path: Path, aws: Aws, queue: str, bucket: str, idle: str) -> Path:
    at = {"endpoint_url": aws.endpoint, "region": "us-east-1"}
    lake = {"prefix": "orders/{yyyy}/{mm}/{dd}", "format": "parquet", "max_event_bytes": 65536}
    return integration(
        path,
        name="orders-to-lake",
        sources=[
            component(
                "orders", "aws.sqs", queue_url=queue, batch=BATCH, wait_time="2s", idle_timeout=idle, **at
            )
        ],
        transformations=[component("total", "jq", program=".data.total = (.data.amount * .data.qty)")],
        targets=[
            component("lake", "aws.s3", bucket=bucket, **lake, **at),
            # written per bundle before the messages are deleted, like the lake
            component(
                "rejects",
                "aws.s3",
                bucket=bucket,
                prefix="rejects",
                format="jsonl",
                endpoint_url=aws.endpoint,
            ),
        ],
        triggers=[trigger("orders", "lake", ["total"], [{"exact": {"type": "com.amazon.sqs.message"}}])],
        dead_letter="rejects",
    )


def _lake_rows(aws: Aws, bucket: str) -> list[dict[str, Any]]:
    return [r for rows in aws.rows(bucket, "orders/").values() for r in rows]


def _dead(aws: Aws, bucket: str) -> list[dict[str, Any]]:
    return [r for rows in aws.rows(bucket, "rejects/").values() for r in rows]


def test_20000_messages_to_parquet_with_dead_letters(aws, tmp_path):
    queue, bucket = aws.queue(VisibilityTimeout="30"), aws.bucket()
    entries, not_json, too_big = _entries()
    feeder = Feeder(aws, queue, entries)
    feeder.start()
    spec = _spec(tmp_path / "it.yaml", aws, queue, bucket, idle="6s")
    started = time.monotonic()
    r = subprocess.run(
        [meshline_exe(), "run", str(spec), "--runner", "direct"], capture_output=True, text=True, timeout=900
    )
    elapsed = time.monotonic() - started
    feeder.join(timeout=60)
    assert feeder.error is None and len(feeder.ids) == TOTAL
    assert r.returncode == 0, r.stderr[-3000:]
    seq_of = dict(zip(feeder.ids, range(TOTAL), strict=True))

    rows = _lake_rows(aws, bucket)
    counts = Counter(row["id"] for row in rows)
    good = {mid for mid, i in seq_of.items() if i not in not_json and i not in too_big}
    missing = good - set(counts)
    assert not missing, (
        len(missing),
        sorted(seq_of[m] for m in missing)[:50],
        aws.depth(queue),
        r.stderr[-1500:],
    )
    assert set(counts) == good  # every good message, nothing else
    assert max(counts.values()) == 1  # in exactly one object row set
    sample = next(row for row in rows if seq_of[row["id"]] == 1)
    assert orjson.loads(sample["data"]) == {"order": 1, "amount": 1, "qty": 2, "customer": "c1", "total": 2}
    assert orjson.loads(sample["extensions"]) == {"seq": "1"}

    dead = _dead(aws, bucket)
    by_seq = {seq_of[e["id"]]: e for e in dead}
    assert len(dead) == len(by_seq) == len(not_json) + len(too_big)
    for i in not_json:
        assert by_seq[i]["meshlineerrorstage"] == "transform"
        assert "Cannot index string" in by_seq[i]["meshlineerror"]
    for i in too_big:
        assert by_seq[i]["meshlineerrorstage"] == "deliver"
        assert "exceeds max_event_bytes (65536)" in by_seq[i]["meshlineerror"]
    assert aws.depth(queue) == 0  # every message deleted
    print(f"\n20,000 messages SQS → parquet on direct: {elapsed:.1f}s wall")


# The kill needs many bundles of BATCH messages on each side of it, not volume (that is the test
# above): the run is killed once total/2 rows are in the lake, polled every 0.5 s, while the other
# half (10+ bundles, several seconds at the runners' pace on moto) is still unread; after the
# kill, the feeder's later messages reach only the rerun. 20,000 and 6,000 took a minute each.
@pytest.mark.parametrize(("runner", "total"), [("direct", 5_000), ("prism", 4_000)])
def test_sigkill_halfway_then_rerun_loses_nothing(aws, tmp_path, runner, total):
    queue, bucket = aws.queue(VisibilityTimeout="5"), aws.bucket()
    entries, not_json, too_big = _entries(total)
    feeder = Feeder(aws, queue, entries)
    feeder.start()
    endless = _spec(tmp_path / "a.yaml", aws, queue, bucket, idle="0s")
    proc = subprocess.Popen(
        [meshline_exe(), "run", str(endless), "--runner", runner],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        seen: dict[str, int] = {}  # object key -> rows (each object is read once)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and sum(seen.values()) < total // 2:
            for key in aws.keys(bucket, "orders/"):
                if key not in seen:
                    body = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                    seen[key] = pq.read_metadata(io.BytesIO(body)).num_rows
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    first = _lake_rows(aws, bucket)
    assert total // 2 <= len(first) < total, len(first)  # really killed halfway
    # Run again (the feeder goes on) until the queue stays empty longer than the 5s visibility timeout.
    again = _spec(tmp_path / "b.yaml", aws, queue, bucket, idle="10s")
    r = subprocess.run(
        [meshline_exe(), "run", str(again), "--runner", runner], capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stderr[-3000:]
    feeder.join(timeout=60)
    assert feeder.error is None and len(feeder.ids) == total

    seq_of = dict(zip(feeder.ids, range(total), strict=True))
    good = {mid for mid, i in seq_of.items() if i not in not_json and i not in too_big}
    rows = _lake_rows(aws, bucket)
    counts = Counter(row["id"] for row in rows)
    assert set(counts) == good  # nothing lost
    duplicates = sum(n - 1 for n in counts.values())
    # The bundle in flight at the kill (written, not yet deleted) comes back; the ledger skips it.
    assert duplicates == 0, duplicates  # the in-flight bundle, stored before the kill, is not written again
    dead = _dead(aws, bucket)
    dead_ids = {e["id"] for e in dead}
    assert {mid for mid, i in seq_of.items() if i in not_json or i in too_big} == dead_ids  # none lost
    assert {e["meshlineerrorstage"] for e in dead} == {"transform", "deliver"}
    assert aws.depth(queue) == 0
    print(
        f"\nSIGKILL halfway on {runner}: {len(first)} rows before the kill, "
        f"{duplicates} duplicate rows after the rerun"
    )
