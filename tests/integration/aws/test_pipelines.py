"""The shipped AWS pipelines, unchanged, against moto (parameters only)."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_s3_notifications_to_sqs(meshline, aws):
    uploads, jobs, dlq, bucket = aws.queue(), aws.queue(), aws.queue(), aws.bucket()
    aws.s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": aws.arn(uploads), "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    for key in ("in/day-1.csv", "in/day-2.parquet", "in/readme.txt", "tmp/partial.csv"):
        aws.s3.put_object(Bucket=bucket, Key=key, Body=b"a,b\n1,2\n")
    r = meshline(
        "run",
        str(ROOT / "pipelines" / "s3-notifications-to-sqs.yaml"),
        "--runner", "direct",
        "--param", f"notifications_url={uploads}",
        "--param", f"jobs_url={jobs}",
        "--param", f"dead_letters_url={dlq}",
        "--param", f"endpoint={aws.endpoint}",
        "--param", "idle=3s",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    received = aws.drain(jobs)
    bodies = sorted((orjson.loads(m["Body"]) for m in received), key=lambda b: b["key"])
    assert bodies == [
        {"bucket": bucket, "key": "in/day-1.csv", "size": 8, "format": "csv"},
        {"bucket": bucket, "key": "in/day-2.parquet", "size": 8, "format": "parquet"},
    ]
    types = {m["MessageAttributes"]["ce-type"]["StringValue"] for m in received}
    assert types == {"com.example.load.requested"}
    assert aws.drain(dlq) == [] and aws.depth(uploads) == 0


def test_sqs_to_s3(meshline, aws):
    orders, review, bucket = aws.queue(), aws.queue(), aws.bucket()
    ids = aws.send(
        orders,
        [
            {"MessageBody": orjson.dumps({"order": i, "amount": str(i * 30), "qty": 1}).decode()}
            for i in range(10)
        ]
        + [{"MessageBody": "order 99, by phone"}],
    )
    r = meshline(
        "run",
        str(ROOT / "pipelines" / "sqs-to-s3.yaml"),
        "--runner", "direct",
        "--param", f"queue_url={orders}",
        "--param", f"big_orders_url={review}",
        "--param", f"bucket={bucket}",
        "--param", f"endpoint={aws.endpoint}",
        "--param", "idle=3s",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lake = [row for rows in aws.rows(bucket, "orders/").values() for row in rows]
    assert sorted(row["id"] for row in lake) == sorted(ids[:10])
    assert sorted(orjson.loads(row["data"])["total"] for row in lake) == [i * 30 for i in range(10)]
    big = [orjson.loads(m["Body"])["order"] for m in aws.drain(review)]
    assert sorted(big) == [4, 5, 6, 7, 8, 9]  # amount >= 100
    (dead,) = [row for rows in aws.rows(bucket, "dead-letters/").values() for row in rows]
    assert dead["id"] == ids[10] and dead["meshlineerrorstage"] == "transform"
    assert aws.depth(orders) == 0
