"""``aws.sqs`` target: events to an SQS queue with ``SendMessageBatch``.

Encoding (``mode``):

- ``binary`` (default): the body is the event ``data``; each attribute is a
  String message attribute ``ce-NAME`` (``datacontenttype`` as
  ``content-type``; without one the body is JSON) — what the ``aws.sqs`` source
  reads back as the same event.
  SQS allows at most 10 message attributes, no empty values, and text bodies
  only: an event that does not fit that (many extensions, an empty value,
  binary data, no data) is sent in structured mode instead, losslessly.
- ``structured``: the body is the CloudEvents JSON format, with the message
  attribute ``content-type: application/cloudevents+json``.

FIFO queues (URL ending ``.fifo``): ``MessageGroupId`` is the value of the
attribute named by ``message_group_id`` (default: ``messagegroupid``, else the
event ``source``), and ``MessageDeduplicationId`` is the SHA-256 of the event's
``source`` and ``id`` — a replay within SQS's 5-minute window is not duplicated.
Batches to a FIFO queue go out one at a time, in order.

Delivery (SPEC §5): 10 entries per call within ``max_message_bytes`` in total;
entries that fail with ``SenderFault`` (the message itself is invalid) are
dead-lettered at once with SQS's reason; throttling, 5xx and connection errors
are retried per the trigger's ``delivery`` policy, only for the entries that
failed. An event larger than ``max_message_bytes`` is dead-lettered with its size.
Without a dead-letter target, a queue that cannot be written at all (retries
exhausted, no such queue, access denied) fails the bundle instead, so an
acknowledging source delivers those events again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.bindings import encode_data
from meshline.connectors.aws.common import client, is_transient, region_of
from meshline.connectors.aws.sqs_target_config import TARGET, SqsTargetConfig
from meshline.connectors.delivery import Failure, RetryPolicy, deliver_batch
from meshline.errors import DeliveryError
from meshline.events import STRUCTURED_CT, CloudEvent, dead_letter, to_json
from meshline.registry import BuildContext

__all__ = ["TARGET", "SqsTargetConfig", "WriteToSqs", "encode_message"]

MAX_ENTRIES = 10
MAX_ATTRIBUTES = 10
# Characters an SQS body or attribute value may hold (XML 1.0 characters).
_INVALID_TEXT = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class MessageTooLarge(ValueError):
    pass


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _binary(event: CloudEvent) -> tuple[str, dict[str, Any]] | None:
    """Binary mode, or ``None`` when the event does not fit SQS's rules for it."""
    attrs = event.attributes
    data = event.data
    if data is None or isinstance(data, (bytes, bytearray, memoryview)) or len(attrs) > MAX_ATTRIBUTES:
        return None
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        value = _text(v)
        if not value or _INVALID_TEXT.search(value):
            return None
        out["content-type" if k == "datacontenttype" else "ce-" + k] = {
            "DataType": "String",
            "StringValue": value,
        }
    body = encode_data(event).decode("utf-8", "surrogatepass")
    if not body or _INVALID_TEXT.search(body):
        return None
    return body, out


def encode_message(event: CloudEvent, mode: str, max_bytes: int) -> tuple[dict[str, Any], int]:
    """The ``SendMessageBatch`` entry (no ``Id``) and its size; raises ``ValueError``."""
    encoded = _binary(event) if mode == "binary" else None
    if encoded is None:
        body = to_json(event).decode("utf-8")
        if _INVALID_TEXT.search(body):
            raise ValueError("the event holds characters SQS does not accept in a message")
        encoded = body, {"content-type": {"DataType": "String", "StringValue": STRUCTURED_CT}}
    body, attributes = encoded
    size = len(body.encode("utf-8")) + sum(
        len(k) + len(v["DataType"]) + len(v["StringValue"].encode("utf-8")) for k, v in attributes.items()
    )
    if size > max_bytes:
        raise MessageTooLarge(
            f"message of {size} bytes exceeds the SQS limit of {max_bytes} bytes (max_message_bytes)"
        )
    return {"MessageBody": body, "MessageAttributes": attributes}, size


def _fifo_fields(event: CloudEvent, group_attribute: str | None) -> dict[str, str]:
    attrs = event.attributes
    group = attrs.get(group_attribute) if group_attribute else attrs.get("messagegroupid")
    group = _text(group if group not in (None, "") else attrs["source"])
    if len(group) > 128 or not re.fullmatch(r"[!-~]+", group):
        group = hashlib.sha256(group.encode()).hexdigest()
    dedup = hashlib.sha256(f"{attrs['source']}\n{attrs['id']}".encode()).hexdigest()
    return {"MessageGroupId": group, "MessageDeduplicationId": dedup}


class _SendFn(beam.DoFn):
    """Buffers a bundle's events and sends them in batches; outputs dead letters."""

    def __init__(self, config: SqsTargetConfig, policy: RetryPolicy, target: str, dead_letter: bool = True):
        self._config = config
        self._policy = policy
        self._target = target
        self._dead_letter = dead_letter

    def setup(self):
        c = self._config
        self._fifo = c.queue_url.endswith(".fifo")
        self._concurrency = 1 if self._fifo else c.concurrency
        self._sqs = client(
            c, "sqs", region=region_of(c, c.queue_url), sdk_retries=False, pool=self._concurrency + 2
        )
        self._pool = ThreadPoolExecutor(max_workers=self._concurrency) if self._concurrency > 1 else None
        self._delivered = beam.metrics.Metrics.counter("meshline", f"target.{self._target}.delivered")
        self._retried = beam.metrics.Metrics.counter("meshline", f"target.{self._target}.retried")

    def teardown(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True)
        if getattr(self, "_sqs", None) is not None:
            self._sqs.close()

    def start_bundle(self):
        self._pending: list[tuple[dict[str, Any], int, CloudEvent, Any, Any]] = []

    def process(self, event: CloudEvent, ts=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        c = self._config
        try:
            entry, size = encode_message(event, c.mode, c.max_message_bytes)
        except ValueError as e:
            yield dead_letter(event, str(e), "deliver")
            return
        if self._fifo:
            entry.update(_fifo_fields(event, c.message_group_id))
        self._pending.append((entry, size, event, ts, window))
        if len(self._pending) >= MAX_ENTRIES * self._concurrency * 4:
            yield from self._flush()

    def finish_bundle(self):
        yield from self._flush()

    def _batches(self) -> list[list[tuple[dict[str, Any], int, CloudEvent, Any, Any]]]:
        batches: list[list[Any]] = []
        current: list[Any] = []
        total = 0
        for item in self._pending:
            if current and (len(current) >= MAX_ENTRIES or total + item[1] > self._config.max_message_bytes):
                batches.append(current)
                current, total = [], 0
            current.append(item)
            total += item[1]
        if current:
            batches.append(current)
        return batches

    def _flush(self):
        if not self._pending:
            return
        batches = self._batches()
        self._pending = []
        if self._pool is None:
            results = [self._deliver(b) for b in batches]
        else:
            results = list(self._pool.map(self._deliver, batches))
        sent = 0
        for batch, (failed, rejected) in zip(batches, results, strict=True):
            sent += len(batch) - len(failed)
            if not self._dead_letter and len(rejected) < len(failed):
                # The queue could not be written at all and nothing would keep these events:
                # fail the bundle, so an acknowledging source delivers them again.
                why = next(w for item, w in failed if id(item) not in rejected)
                url = self._config.queue_url
                raise DeliveryError(f"target {self._target}: sending to {url} failed: {why}")
            for (_, _, event, ts, window), why in failed:
                yield WindowedValue(dead_letter(event, why, "deliver"), ts, (window,))
        self._delivered.inc(sent)

    def _deliver(self, batch: list[Any]) -> tuple[list[tuple[Any, str]], set[int]]:
        """``(failed items with reasons, ids of the items SQS rejected one by one)``."""
        url = self._config.queue_url
        rejected: set[int] = set()

        def send(items: Sequence[Any]) -> list[Failure]:
            entries = [dict(item[0], Id=str(i)) for i, item in enumerate(items)]
            response = self._sqs.send_message_batch(QueueUrl=url, Entries=entries)
            out = []
            for f in response.get("Failed", ()):
                why = f"SQS rejected the message: {f.get('Code')}: {f.get('Message', '')}".rstrip(": ")
                item = items[int(f["Id"])]
                if f.get("SenderFault", False):
                    rejected.add(id(item))
                out.append(Failure(item, why, transient=not f.get("SenderFault", False)))
            return out

        retried = [0]

        def on_retry(n: int) -> None:
            retried[0] += n

        failed = deliver_batch(batch, send, self._policy, is_transient=is_transient, on_retry=on_retry)
        if retried[0]:
            self._retried.inc(retried[0])
        return failed, rejected


class WriteToSqs(beam.PTransform):
    """``PCollection[CloudEvent]`` → dead letters (stage ``deliver``)."""

    def __init__(
        self,
        config: SqsTargetConfig,
        *,
        target_name: str = "sqs",
        policy: RetryPolicy | None = None,
        dead_letter: bool = True,
    ):
        super().__init__()
        self._fn = _SendFn(config, policy or RetryPolicy(), target_name, dead_letter)

    def expand(self, events):
        return events | "Send" >> beam.ParDo(self._fn).with_output_types(CloudEvent)


def build(config: SqsTargetConfig, ctx: BuildContext) -> WriteToSqs:
    dead_letter = ctx.dead_letter is not None
    return WriteToSqs(config, target_name=ctx.name, policy=ctx.delivery, dead_letter=dead_letter)
