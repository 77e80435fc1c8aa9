"""B3 SQS → jq transform → S3 Parquet, on moto (server mode, not counted).

Run alone: ``.venv/bin/python -m bench.b3 [--small N --large N --repeat R]``.

Variants, same messages, same moto server, same run:

- ``meshline``: ``meshline run`` of aws.sqs (bundles of at most 200, 10 receives in
  flight) → ``jq`` transform → aws.s3 Parquet (an object per bundle, written
  before the bundle's messages are deleted);
- ``python loop``: a plain boto3 + pyarrow loop doing the same work in the same
  order: receive 10 (long polling), parse with orjson, transform, and every 200
  messages build a Parquet object (columns built directly), put it, then delete
  those messages in batches of 10.

Both end when the queue has been empty for 3 s. The CPU counted is the client
process tree only (``wait4`` of the command); moto runs in its own process and
its CPU — a large part of the wall time — is not counted, so events/s per core
is the client's cost per message. Messages are fed while a run drains the queue
(at most ~600 waiting): moto's SQS costs O(queue depth) per call. Input sizes
are capped (2,000 and 10,000 by default): moto moves a few hundred messages/s.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import random
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson

from bench.data import make_event
from bench.harness import OUT, PY, Row, Scenario, meshline_bin, parquet_records, standalone

__all__ = ["main", "scenario"]

_SERVERS = contextlib.ExitStack()
atexit.register(_SERVERS.close)
BATCH = 200
VARIANTS = ("meshline", "python loop")
PROGRAM = ".data.total = (.data.amount * .data.quantity)"


def _yaml() -> Path:
    path = OUT / "b3.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: bench-b3}}
spec:
  parameters:
    - {{name: queue_url, required: true}}
    - {{name: bucket, required: true}}
    - {{name: endpoint, required: true}}
  sources:
    - name: orders
      type: aws.sqs
      config: {{queue_url: "${{params.queue_url}}", endpoint_url: "${{params.endpoint}}", region: us-east-1,
                batch: {BATCH}, wait_time: 1s, idle_timeout: 3s}}
  transformations:
    - {{name: total, type: jq, config: {{program: '{PROGRAM}'}}}}
  targets:
    - name: lake
      type: aws.s3
      config: {{bucket: "${{params.bucket}}", prefix: orders, format: parquet,
                endpoint_url: "${{params.endpoint}}", region: us-east-1}}
  triggers:
    - {{name: all, steps: [total], target: lake}}
""")
    return path


def loop(queue_url: str, bucket: str, endpoint: str) -> None:
    """The baseline: boto3 receive 10 → orjson → transform → pyarrow Parquet per 200 → put → delete."""
    import boto3
    import pyarrow as pa
    import pyarrow.parquet as pq

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rows: list[dict[str, Any]] = []
    receipts: list[str] = []
    empty_since: float | None = None

    def flush() -> None:
        columns = ("id", "source", "type", "time", "data")
        table = pa.table({c: pa.array([r[c] for r in rows], type=pa.string()) for c in columns})
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="snappy")
        s3.put_object(Bucket=bucket, Key=f"orders/{uuid.uuid4().hex}.parquet", Body=buf.getvalue())
        for i in range(0, len(receipts), 10):
            entries = [{"Id": str(j), "ReceiptHandle": r} for j, r in enumerate(receipts[i : i + 10])]
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        rows.clear()
        receipts.clear()

    import time

    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            if rows:
                flush()
            now = time.monotonic()
            empty_since = empty_since or now
            if now - empty_since >= 3:
                return
            continue
        empty_since = None
        for m in messages:
            data = orjson.loads(m["Body"])
            data["total"] = data["amount"] * data["quantity"]
            sent = int(m["Attributes"]["SentTimestamp"])
            rows.append(
                {
                    "id": m["MessageId"],
                    "source": arn,
                    "type": "com.amazon.sqs.message",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sent / 1000)) + "Z",
                    "data": orjson.dumps(data).decode(),
                }
            )
            receipts.append(m["ReceiptHandle"])
        if len(rows) >= BATCH:
            flush()


def scenario(small: int, large: int) -> Scenario | None:
    try:
        from tests.integration.aws.support import Aws, Feeder
        from tests.servers.moto import aws_env, moto_server
    except ImportError as e:
        print(f"B3: not available ({e})", file=sys.stderr)
        return None
    try:
        endpoint = _SERVERS.enter_context(moto_server())
    except (RuntimeError, OSError) as e:
        print(f"B3: moto cannot start here: {e}", file=sys.stderr)
        return None
    os.environ.update(aws_env(endpoint))  # fake credentials, inherited by the measured commands
    aws = Aws(endpoint)
    small, large = min(small, 2_000), min(large, 10_000)
    spec = _yaml()
    rng = random.Random(3)
    bodies = {
        n: [orjson.dumps(make_event(i, rng)["data"]).decode() for i in range(n)] for n in (small, large)
    }
    buckets: dict[str, str] = {}
    feeders: list[Any] = []

    def commands(n: int, dst: Path) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for variant in VARIANTS:
            slug = "".join(c if c.isalnum() else "-" for c in variant)
            if dst.name != f"b3-out-{slug}":
                out[variant] = []  # not the one about to run: nothing to prepare
                continue
            for f in feeders:
                f.join()
            queue, bucket = aws.queue(), aws.bucket()
            buckets[f"{dst.name}-{n}"] = bucket
            feeder = Feeder(aws, queue, [{"MessageBody": b} for b in bodies[n]])
            feeder.start()  # feeds while the run drains; its CPU is this process's, not counted
            feeders.append(feeder)
            if variant == "meshline":
                cmd = [meshline_bin(), "run", str(spec), "--runner", "direct"]
                cmd += ["--param", f"queue_url={queue}", "--param", f"bucket={bucket}"]
                out[variant] = [*cmd, "--param", f"endpoint={endpoint}"]
            else:
                out[variant] = [PY, "-m", "bench.b3", "loop", queue, bucket, endpoint]
        return out

    def records(dst: Path) -> list[bytes]:
        """The rows of every object, as type and data: each variant reads its own queue, so message ids,
        the queue ARN (source) and the send times differ by design."""
        bucket = buckets[f"{dst.name}-{large}"]
        out: list[bytes] = []
        for key in aws.keys(bucket):
            body = aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            out += parquet_records(body, ("type", "data"))
        return out

    return Scenario(
        name="B3",
        title="SQS → jq transform → S3 Parquet (moto server, not counted)",
        runner="direct (FnApiRunner), one worker",
        commands=commands,
        records=records,
        small=small,
        large=large,
        notes=[
            "events/s per core of client CPU (the measured process tree); moto's CPU is not counted",
            "wall events/s includes the 3 s idle timeout that ends each run, and moto's speed",
        ],
    )


def main(argv: list[str] | None = None) -> list[Row]:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["loop"]:
        loop(*argv[1:4])
        return []
    return standalone(__doc__, scenario, 2_000, 10_000, argv)


if __name__ == "__main__":
    main()
