"""``aws.s3`` source: S3 event notifications, delivered through an SQS queue.

Configure the bucket to notify an SQS queue (directly, or through SNS with raw
delivery off — the SNS envelope is unwrapped) and point ``queue_url`` at it.
Each record of a notification becomes one CloudEvent (SPEC §2):

- ``type``: ``com.amazon.s3.`` + the event category of ``eventName``, lowercased:
  ``ObjectCreated:Put`` → ``com.amazon.s3.objectcreated``, ``ObjectRemoved:*`` →
  ``objectremoved``, ``ObjectRestore:*`` → ``objectrestore``,
  ``LifecycleExpiration:*`` → ``lifecycleexpiration``, ``ObjectTagging:*`` →
  ``objecttagging``, ``Replication:*`` → ``replication`` …;
- ``source``: the bucket ARN (``arn:aws:s3:::BUCKET``); ``subject``: the object key
  (decoded: S3 sends keys URL-encoded, ``data`` keeps them as sent);
- ``id``: ``KEY@SEQUENCER`` — S3's sequencer orders the events of one key, so
  the pair names one event of one object, and a notification S3 delivers twice
  keeps its id (idempotent targets store it once). Without a sequencer:
  ``KEY@x-amz-request-id`` (from ``responseElements``), else
  ``KEY@EVENTNAME@EVENTTIME`` (S3-compatible stores that send neither);
- ``time``: ``eventTime``; ``data``: the S3 event record, plus — with
  ``read_content`` — the object's bytes for ``objectcreated`` records up to
  ``max_content_bytes``: ``content`` (JSON when the object's content type is
  JSON, else text) or ``content_base64`` for non-UTF-8 bytes, or
  ``content_error`` when the object could not be read (e.g. deleted meanwhile).

The ``s3:TestEvent`` message S3 sends when a notification is configured is
deleted and counted (metric ``source.NAME.test_events``), not delivered. A
message that is not an S3 notification is dead-lettered (stage ``decode``).
A notification's message is deleted only after the bundle holding its last
record is committed.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import orjson

from meshline.config import doc
from meshline.connectors.aws.common import client, error_code, is_transient
from meshline.connectors.aws.sqs import SqsQueueSettings, read_queue, sqs_time
from meshline.connectors.delivery import RetryPolicy
from meshline.connectors.queues import Message
from meshline.errors import EventError
from meshline.events import CloudEvent
from meshline.registry import BuildContext, Component

if TYPE_CHECKING:
    from meshline.connectors.unbounded import ReadFromQueue

__all__ = ["SOURCE", "S3SourceConfig", "event_type", "record_to_event"]

TYPE_PREFIX = "com.amazon.s3."
NOTIFICATION_TYPE = "com.amazon.s3.notification"  # dead letters: the raw message


@dataclass(frozen=True, kw_only=True)
class S3SourceConfig(SqsQueueSettings):
    """S3 event notifications from the SQS queue the bucket notifies (at least once)."""

    read_content: bool = doc("put the content of created objects into data (small objects only)", False)
    max_content_bytes: int = doc("read_content: largest object whose content is read", 1024 * 1024)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_content_bytes < 0:
            raise ValueError(f"max_content_bytes: must be >= 0, got {self.max_content_bytes}")


def event_type(event_name: str) -> str:
    """``ObjectCreated:Put`` → ``com.amazon.s3.objectcreated``."""
    category = event_name.split(":", 1)[0].strip().lower()
    if not category:
        raise EventError("the S3 record has no eventName")
    return TYPE_PREFIX + category


def record_to_event(record: Any) -> CloudEvent:
    """One S3 event record as a CloudEvent; raises :class:`EventError` when it is not one."""
    if not isinstance(record, dict):
        raise EventError("an S3 notification record must be a JSON object")
    s3 = record.get("s3")
    bucket = (s3 or {}).get("bucket") or {}
    obj = (s3 or {}).get("object") or {}
    name = bucket.get("name")
    if not isinstance(name, str) or not name:
        raise EventError("the S3 record has no s3.bucket.name")
    encoded = obj.get("key")
    if not isinstance(encoded, str):
        raise EventError("the S3 record has no s3.object.key")
    key = unquote_plus(encoded)  # notifications carry keys URL-encoded
    marker = obj.get("sequencer") or (record.get("responseElements") or {}).get("x-amz-request-id")
    if not marker:
        if not record.get("eventTime"):
            raise EventError("the S3 record has no s3.object.sequencer, x-amz-request-id or eventTime")
        marker = f"{record.get('eventName', '')}@{record['eventTime']}"
    attrs: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"{key}@{marker}",
        "source": bucket.get("arn") or f"arn:aws:s3:::{name}",
        "type": event_type(str(record.get("eventName", ""))),
        "subject": key,
    }
    t = record.get("eventTime")
    if isinstance(t, str) and t:
        attrs["time"] = t
    return CloudEvent(attrs, record)


def _epoch(t: Any, fallback: float) -> float:
    if isinstance(t, str):
        try:
            return dt.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return fallback


class _Convert:
    """SQS message → one pulled message per record; reads small objects when asked to."""

    def __init__(self, config: S3SourceConfig, source_name: str):
        self._config = config
        self._name = source_name
        self._s3: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_config": self._config, "_name": self._name, "_s3": None}

    def __call__(self, queue_arn: str, message: dict[str, Any]) -> list[Message]:
        receipt = message["ReceiptHandle"]
        _, sent = sqs_time(message)
        try:
            records = self._records(message.get("Body") or "")
        except EventError as e:
            return [Message(receipt, self._raw(queue_arn, message), sent, error=str(e))]
        if records is None:
            from apache_beam.metrics import Metrics  # on the worker only: the config must not import Beam

            Metrics.counter("meshline", f"source.{self._name}.test_events").inc()
            return []
        out: list[Message] = []
        for i, record in enumerate(records):
            ack = receipt if i == len(records) - 1 else ""  # deleted once its last record is claimed
            try:
                event = record_to_event(record)
            except EventError as e:
                bad = CloudEvent(
                    {
                        "specversion": "1.0",
                        "id": f"{message.get('MessageId')}-{i}",
                        "source": queue_arn,
                        "type": NOTIFICATION_TYPE,
                    },
                    record,
                )
                out.append(Message(ack, bad, sent, error=f"record {i}: {e}"))
                continue
            if self._config.read_content and event.type == TYPE_PREFIX + "objectcreated":
                self._add_content(event, record)
            out.append(Message(ack, event, _epoch(record.get("eventTime"), sent)))
        return out

    @staticmethod
    def _records(body: str) -> list[Any] | None:
        """The records of a notification; ``None`` for ``s3:TestEvent``."""
        try:
            doc_ = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise EventError("not an S3 event notification: the body is not JSON") from None
        if (
            isinstance(doc_, dict)
            and doc_.get("Type") == "Notification"
            and isinstance(doc_.get("Message"), str)
        ):
            try:
                doc_ = orjson.loads(doc_["Message"])  # through SNS
            except orjson.JSONDecodeError:
                raise EventError("not an S3 event notification: the SNS message is not JSON") from None
        if isinstance(doc_, dict) and doc_.get("Event") == "s3:TestEvent":
            return None
        records = doc_.get("Records") if isinstance(doc_, dict) else None
        if not isinstance(records, list) or not records:
            raise EventError("not an S3 event notification: no Records")
        return records

    @staticmethod
    def _raw(queue_arn: str, message: dict[str, Any]) -> CloudEvent:
        attrs = {
            "specversion": "1.0",
            "id": message.get("MessageId", "unknown"),
            "source": queue_arn,
            "type": NOTIFICATION_TYPE,
        }
        return CloudEvent(attrs, message.get("Body") or None)

    def _add_content(self, event: CloudEvent, record: dict[str, Any]) -> None:
        obj = record["s3"]["object"]
        size = obj.get("size")
        if isinstance(size, int) and size > self._config.max_content_bytes:
            return
        if self._s3 is None:
            self._s3 = client(self._config, "s3")
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(obj["key"])
        data = dict(record)

        def get() -> tuple[bytes, str]:
            args: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if obj.get("versionId"):
                args["VersionId"] = obj["versionId"]
            r = self._s3.get_object(**args)
            with r["Body"] as body:
                return body.read(self._config.max_content_bytes + 1), str(r.get("ContentType") or "")

        try:
            raw, content_type = RetryPolicy(retries=3).call(get, is_transient=is_transient)
        except Exception as e:
            if is_transient(e):
                raise  # the bundle fails; the notification is redelivered
            data["content_error"] = f"{error_code(e) or type(e).__name__}: reading s3://{bucket}/{key} failed"
            event.data = data
            return
        if len(raw) > self._config.max_content_bytes:
            return
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "application/json" or media.endswith("+json"):
            try:
                data["content"] = orjson.loads(raw)
                event.data = data
                return
            except orjson.JSONDecodeError:
                pass
        try:
            data["content"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            data["content_base64"] = base64.b64encode(raw).decode("ascii")
        event.data = data


def build(config: S3SourceConfig, ctx: BuildContext) -> ReadFromQueue:
    return read_queue(config, ctx, _Convert(config, ctx.name))


SOURCE = Component(
    id="aws.s3",
    kind="source",
    config=S3SourceConfig,
    build=build,
    description="Amazon S3 event notifications through an SQS queue; one event per record (at least once).",
    unbounded=True,
)
