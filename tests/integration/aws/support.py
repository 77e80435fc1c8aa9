"""Admin helpers for the AWS tests against moto: queues, buckets, sending, draining, reading objects."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

import boto3

from meshline.connectors.formats import read_rows
from tests.servers.moto import REGION


class Aws:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)

    # ------------------------------------------------------------------ SQS

    def queue(self, fifo: bool = False, **attributes: str) -> str:
        name = f"q-{uuid.uuid4().hex[:10]}" + (".fifo" if fifo else "")
        if fifo:
            attributes.setdefault("FifoQueue", "true")
        return self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def arn(self, url: str) -> str:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(attrs["QueueArn"])

    def send(self, url: str, entries: Iterable[dict[str, Any]]) -> list[str]:
        """SendMessageBatch in tens; returns the MessageIds in order."""
        entries = list(entries)
        ids: list[str] = []
        for i in range(0, len(entries), 10):
            chunk = [dict(e, Id=str(j)) for j, e in enumerate(entries[i : i + 10])]
            r = self.sqs.send_message_batch(QueueUrl=url, Entries=chunk)
            assert not r.get("Failed"), r["Failed"]
            by_id = {s["Id"]: s["MessageId"] for s in r["Successful"]}
            ids += [by_id[str(j)] for j in range(len(chunk))]
        return ids

    def depth(self, url: str) -> int:
        a = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])

    def drain(self, url: str, visibility: int = 30) -> list[dict[str, Any]]:
        """Every message now visible (deleting them)."""
        out: list[dict[str, Any]] = []
        while True:
            r = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=visibility,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not r:
                return out
            out += r
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(r)]
            self.sqs.delete_message_batch(QueueUrl=url, Entries=entries)

    # ------------------------------------------------------------------ S3

    def bucket(self) -> str:
        name = f"b-{uuid.uuid4().hex[:12]}"
        self.s3.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return sorted(k for k in keys if not _hidden(k))

    def rows(self, bucket: str, prefix: str = "") -> dict[str, list[dict[str, Any]]]:
        """Object key → its rows (format from the extension)."""
        out = {}
        for key in self.keys(bucket, prefix):
            fmt = key.rsplit(".", 1)[-1]
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            out[key] = read_rows(fmt, body)
        return out


class Feeder(threading.Thread):
    """Sends ``entries`` to a queue in the background, keeping at most ``depth`` messages in it.

    moto's SQS costs O(queue depth) per call, so a shallow queue fed as it
    drains keeps a 20,000-message test fast; the pipeline sees a steady stream.
    """

    def __init__(self, aws: Aws, url: str, entries: list[dict[str, Any]], depth: int = 600):
        super().__init__(daemon=True)
        self.aws, self.url, self.entries, self.max_depth = aws, url, entries, depth
        self.ids: list[str] = []
        self.paused = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            i = 0
            while i < len(self.entries):
                if self.paused.is_set() or self.aws.depth(self.url) > self.max_depth:
                    time.sleep(0.2)
                    continue
                n = min(200, len(self.entries) - i)
                self.ids += self.aws.send(self.url, self.entries[i : i + n])
                i += n
        except BaseException as e:  # reported by the test
            self.error = e


def _hidden(key: str) -> bool:
    """Keys data readers skip (Hive, Athena, pyarrow): a target's ledger under ``.meshline/``."""
    return any(part.startswith((".", "_")) for part in key.split("/"))
