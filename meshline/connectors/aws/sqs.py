"""``aws.sqs`` source: an SQS queue read with long polling, deleted after the runner commits.

Each message becomes one CloudEvent (SPEC §2):

- a message that already *is* a CloudEvent passes through as that event —
  structured (the body is the CloudEvents JSON format, or the message attribute
  ``content-type`` is ``application/cloudevents+json``) or binary (message
  attributes ``ce-specversion``, ``ce-id``, … or ``ce_…``, data in the body,
  ``content-type`` attribute for ``datacontenttype``);
- any other message becomes ``com.amazon.sqs.message``: ``id`` = MessageId,
  ``source`` = the queue ARN, ``time`` = SentTimestamp, ``data`` = the body as
  JSON when it parses, else as text. Message attributes whose lowercased names
  are valid CloudEvents names (letters and digits, at most 20) become
  extensions; others are dropped. On FIFO queues ``messagegroupid`` carries the
  MessageGroupId.

A message that claims to be a CloudEvent but is broken is dead-lettered
(stage ``decode``) with its body. Deletion follows
:mod:`meshline.connectors.unbounded`: only after the bundle that consumed the
message is committed (see :mod:`meshline.connectors.aws.reader`). FIFO queues keep
per-group order: SQS hands out a group's next messages only after the previous
ones were deleted.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from meshline.attributes import bad_character
from meshline.config import Duration, doc
from meshline.connectors.aws.common import AwsConnection
from meshline.connectors.queues import Message
from meshline.errors import EventError
from meshline.events import STRUCTURED_CT, CloudEvent, from_json_dict, is_valid_extension_name
from meshline.registry import BuildContext, Component

if TYPE_CHECKING:
    from meshline.connectors.unbounded import ReadFromQueue

__all__ = ["SOURCE", "SqsSourceConfig", "message_to_event", "sqs_time"]

MESSAGE_TYPE = "com.amazon.sqs.message"


@dataclass(frozen=True, kw_only=True)
class _SqsQueueSettingsFields:
    """The queue keys (listed first in the schema)."""

    queue_url: str = doc("the queue URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/orders")
    receivers: int = doc("ReceiveMessage calls in flight at once (10 messages each)", 10)
    wait_time: Duration = doc(
        "long polling: how long a receive waits for messages (at most 20s)", Duration(20)
    )
    visibility_timeout: Duration | None = doc(
        "visibility timeout for received messages (default: the queue's); extended while a bundle runs",
        None,
    )
    max_extension: Duration = doc(
        "stop extending a message's visibility after this long (then SQS redelivers it)", Duration(900)
    )
    batch: int = doc("at most this many messages per bundle: each bundle is committed, then deleted", 100)
    max_events: int | None = doc("end the source after this many messages", None)
    idle_timeout: Duration | None = doc(
        "end the source after this long without a message, e.g. 30s (0: never)", None
    )


@dataclass(frozen=True, kw_only=True)
class SqsQueueSettings(AwsConnection, _SqsQueueSettingsFields):
    """Connection plus the reading knobs both SQS-fed sources share."""

    def __post_init__(self) -> None:
        self._check_connection()
        if not self.queue_url.strip():
            raise ValueError("queue_url: must not be empty")
        if not 1 <= self.receivers <= 64:
            raise ValueError(f"receivers: must be between 1 and 64, got {self.receivers}")
        if self.wait_time > 20:
            raise ValueError(f"wait_time: SQS long polling waits at most 20s, got {self.wait_time:g}s")
        if self.visibility_timeout is not None and not 1 <= self.visibility_timeout <= 43200:
            raise ValueError(
                f"visibility_timeout: must be between 1s and 12h, got {self.visibility_timeout:g}s"
            )
        if not 1 <= self.batch <= 10000:
            raise ValueError(f"batch: must be between 1 and 10000, got {self.batch}")
        if self.max_events is not None and self.max_events < 0:
            raise ValueError(f"max_events: must be >= 0, got {self.max_events}")

    def effective_wait(self) -> int:
        """Long-poll seconds; an ``idle_timeout`` shorter than ``wait_time`` shortens it."""
        wait = float(self.wait_time)
        if self.idle_timeout:
            wait = min(wait, max(1.0, float(self.idle_timeout)))
        return int(wait)


@dataclass(frozen=True, kw_only=True)
class SqsSourceConfig(SqsQueueSettings):
    """Read an Amazon SQS queue (at least once; deleted after the runner commits)."""


def sqs_time(message: dict[str, Any]) -> tuple[str | None, float]:
    """``(RFC 3339 time, epoch seconds)`` of a message's SentTimestamp (now when absent)."""
    sent = (message.get("Attributes") or {}).get("SentTimestamp")
    if sent is None:
        now = dt.datetime.now(dt.UTC)
        return None, now.timestamp()
    ms = int(sent)
    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z"), ms / 1000


def _attribute_values(message: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, v in (message.get("MessageAttributes") or {}).items():
        if "StringValue" in v:
            out[name] = v["StringValue"]
        elif "BinaryValue" in v:
            raw = v["BinaryValue"]
            out[name] = base64.b64encode(raw if isinstance(raw, bytes) else str(raw).encode()).decode("ascii")
    return out


def _is_json_ct(ct: str) -> bool:
    media = ct.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def body_data(body: str, content_type: str | None) -> Any:
    """Event data from a text body: JSON when it parses (or must), else the text."""
    if not body:
        return None
    if content_type is None or _is_json_ct(content_type):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            if content_type is not None:
                raise EventError("body is not valid JSON although its content type says so") from None
            return body
    return body


def message_to_event(queue_arn: str, message: dict[str, Any]) -> CloudEvent:
    """One SQS message (as boto3 returns it) as a CloudEvent; raises :class:`EventError`."""
    body = message.get("Body") or ""
    values = _attribute_values(message)
    lowered = {k.lower(): v for k, v in values.items()}
    ce = {k[3:]: v for k, v in lowered.items() if k.startswith(("ce-", "ce_"))}
    ct = lowered.get("content-type") or lowered.get("content_type")
    if "specversion" in ce:  # binary mode
        if ct:
            ce["datacontenttype"] = ct
        event = from_json_dict(ce)
        event.data = body_data(body, event.attributes.get("datacontenttype"))
        return event
    if ct and ct.split(";", 1)[0].strip().lower() == STRUCTURED_CT:
        return _structured(body)
    if body.startswith("{") and '"specversion"' in body:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and "specversion" in parsed:
            return from_json_dict(parsed)
    time_text, _ = sqs_time(message)
    attrs: dict[str, Any] = {
        "specversion": "1.0",
        "id": message["MessageId"],
        "source": queue_arn,
        "type": MESSAGE_TYPE,
    }
    if time_text:
        attrs["time"] = time_text
    for k, v in lowered.items():
        if k not in attrs and is_valid_extension_name(k) and bad_character(v) is None:  # a String
            attrs[k] = v
    group = (message.get("Attributes") or {}).get("MessageGroupId")
    if group is not None:
        attrs.setdefault("messagegroupid", group)
    return CloudEvent(attrs, body_data(body, None))


def _structured(body: str) -> CloudEvent:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise EventError(f"structured CloudEvent is not valid JSON: {e}") from None
    return from_json_dict(parsed)


def raw_event(queue_arn: str, message: dict[str, Any]) -> CloudEvent:
    """The message as-is (body as text) for the dead-letter target."""
    attrs: dict[str, Any] = {
        "specversion": "1.0",
        "id": message.get("MessageId", "unknown"),
        "source": queue_arn,
        "type": MESSAGE_TYPE,
    }
    time_text, _ = sqs_time(message)
    if time_text:
        attrs["time"] = time_text
    return CloudEvent(attrs, message.get("Body") or None)


def convert_sqs(queue_arn: str, message: dict[str, Any]) -> list[Message]:
    _, ts = sqs_time(message)
    receipt = message["ReceiptHandle"]
    try:
        return [Message(receipt, message_to_event(queue_arn, message), ts)]
    except EventError as e:
        return [Message(receipt, raw_event(queue_arn, message), ts, error=str(e))]


class MakeReader:
    """Picklable factory: the boto3 client is created on the worker, in ``setup()``.

    Every DoFn instance of one source in a worker process shares one reader. A
    runner may run the next bundle on a fresh DoFn instance while the previous
    one waits for finalization (Prism does); a reader of its own would strand
    the messages its in-flight receives had already taken.
    """

    def __init__(self, config: SqsQueueSettings, convert: Any, source_name: str = ""):
        self._config = config
        self._convert = convert
        self._name = source_name

    def __call__(self) -> Any:
        from meshline.connectors.aws.reader import SqsReader, shared_reader

        c = self._config
        key = (type(self._convert).__qualname__, c.queue_url, c.endpoint_url, self._name)
        return shared_reader(
            key,
            lambda: SqsReader(
                c,
                c.queue_url,
                self._convert,
                receivers=c.receivers,
                wait_seconds=c.effective_wait(),
                visibility_timeout=int(c.visibility_timeout) if c.visibility_timeout else None,
                max_extension=float(c.max_extension),
            ),
        )


def read_queue(config: SqsQueueSettings, ctx: BuildContext, convert: Any) -> ReadFromQueue:
    from meshline.connectors.unbounded import ReadFromQueue

    return ReadFromQueue(
        MakeReader(config, convert, ctx.name),
        source_name=ctx.name,
        max_events=config.max_events,
        idle_timeout=float(config.idle_timeout) if config.idle_timeout else None,  # 0s: never
        batch=config.batch,
    )


def build(config: SqsSourceConfig, ctx: BuildContext) -> ReadFromQueue:
    return read_queue(config, ctx, convert_sqs)


SOURCE = Component(
    id="aws.sqs",
    kind="source",
    config=SqsSourceConfig,
    build=build,
    description="Amazon SQS queue, long polling; messages deleted after the runner commits (at least once).",
    unbounded=True,
)
