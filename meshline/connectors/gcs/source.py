"""``google.storage`` source: object events of a bucket, from Pub/Sub notifications or by polling.

``mode: notifications`` (default) pulls the Pub/Sub ``subscription`` of a bucket
notification config (``gcloud storage buckets notifications create gs://B
--topic=T``) on the same code as the ``google.pubsub`` source: messages are
acknowledged only in Beam's bundle finalizer, after the runner committed the
bundle that consumed them (at least once). Each notification becomes one
CloudEvent (SPEC §2):

- ``type``: ``com.google.cloud.storage.objectfinalize`` / ``objectmetadataupdate``
  / ``objectdelete`` / ``objectarchive`` (from the ``eventType`` attribute);
- ``source``: ``//storage.googleapis.com/projects/_/buckets/BUCKET``;
- ``id``: the Pub/Sub message id; ``subject``: ``objects/NAME``; ``time``: the
  notification's ``eventTime``;
- ``data``: the object metadata (the JSON API object resource).

``event_types`` and ``object_name_prefix`` keep only matching notifications
(the others, and notifications of other buckets on a shared topic, are
acknowledged and skipped). ``download: true`` adds the content of finalized
objects up to ``download_max_bytes`` to ``data`` as ``content`` (UTF-8 text) or
``content_base64``.

``mode: poll`` is for buckets without notifications: it lists the bucket every
``poll_interval`` and emits an ``objectfinalize`` event (id ``NAME#GENERATION``)
for every object generation it has not emitted before. What it emitted is
remembered in a state object in the bucket (``state``, default
``.meshline/INTEGRATION/SOURCE.state.json``) or a local file (``state_path``),
written only in the bundle finalizer — after the runner committed the events —
so a restart neither loses nor repeats objects (at least once across crashes).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson

from meshline.config import Duration, doc
from meshline.connectors.gcs.poll import PollReader
from meshline.connectors.pubsub import Subscription
from meshline.connectors.queues import Message
from meshline.errors import EventError
from meshline.events import CloudEvent
from meshline.registry import BuildContext, Component

if TYPE_CHECKING:
    from meshline.connectors.unbounded import ReadFromQueue

__all__ = [
    "SOURCE",
    "GcsSourceConfig",
    "event_type",
    "notification_to_event",
    "object_event",
]

_LOGGER = logging.getLogger(__name__)
TYPE_PREFIX = "com.google.cloud.storage."
NOTIFICATION_TYPES = ("OBJECT_FINALIZE", "OBJECT_METADATA_UPDATE", "OBJECT_DELETE", "OBJECT_ARCHIVE")
RAW_TYPE = "com.google.cloud.storage.notification"


def event_type(notification_type: str) -> str:
    """``OBJECT_FINALIZE`` → ``com.google.cloud.storage.objectfinalize``."""
    return TYPE_PREFIX + notification_type.replace("_", "").lower()


def _normalise_event_type(value: str) -> str | None:
    """``OBJECT_FINALIZE``, ``objectfinalize`` or the full CloudEvents type → ``OBJECT_FINALIZE``."""
    short = value.removeprefix(TYPE_PREFIX).replace("_", "").lower()
    for t in NOTIFICATION_TYPES:
        if t.replace("_", "").lower() == short:
            return t
    return None


@dataclass(frozen=True, kw_only=True)
class GcsSourceConfig:
    """Object events of a Google Cloud Storage bucket: Pub/Sub notifications, or polling the bucket."""

    bucket: str = doc("the bucket whose object events are read")
    project: str | None = doc("the Google Cloud project (of the subscription, and for the client)", None)
    mode: Literal["notifications", "poll"] = doc(
        "'notifications': pull the bucket's Pub/Sub notification subscription; "
        "'poll': list the bucket for new objects",
        "notifications",
    )
    subscription: str | None = doc(
        "notifications: the subscription id (or projects/P/subscriptions/S) of the notification topic", None
    )
    event_types: list[str] = doc(
        "keep only these notification types: OBJECT_FINALIZE, OBJECT_METADATA_UPDATE, "
        "OBJECT_DELETE, OBJECT_ARCHIVE (empty: all)",
        [],
    )
    object_name_prefix: str = doc("keep only objects whose name starts with this", "")
    download: bool = doc("add the content of finalized objects to data (content or content_base64)", False)
    download_max_bytes: int = doc("download only objects up to this size", 1048576)
    endpoint_url: str | None = doc(
        "the Cloud Storage JSON API endpoint, e.g. http://127.0.0.1:4443 for an emulator (anonymous)", None
    )
    pubsub_endpoint_url: str | None = doc(
        "host:port of a Pub/Sub endpoint, e.g. the emulator (default: $PUBSUB_EMULATOR_HOST)", None
    )
    poll_interval: Duration = doc("poll: time between two listings of the bucket", Duration(10))
    state: str | None = doc(
        "poll: object in the bucket that remembers the emitted objects "
        "(default .meshline/INTEGRATION/SOURCE.state.json)",
        None,
    )
    state_path: str | None = doc(
        "poll: a local file that remembers the emitted objects instead", None, path=True
    )
    max_events: int | None = doc("end the source after this many events", None)
    idle_timeout: Duration | None = doc(
        "end the source after this long without an event, e.g. 30s (0: never)", None
    )
    batch: int = doc("notifications per pull and per acknowledgement batch", 100)

    def __post_init__(self) -> None:
        if not self.bucket.strip():
            raise ValueError("bucket: must not be empty")
        if self.mode == "notifications":
            if not self.subscription:
                raise ValueError("subscription: required with mode: notifications (or set mode: poll)")
            if not self.subscription.startswith("projects/") and not self.project:
                raise ValueError(
                    "project: required when subscription is not a projects/P/subscriptions/S path"
                )
        else:
            if self.subscription:
                raise ValueError("subscription: not used with mode: poll")
            if self.state and self.state_path:
                raise ValueError("state, state_path: set at most one")
            if self.poll_interval <= 0:
                raise ValueError(f"poll_interval: must be > 0, got {self.poll_interval}")
        bad = [t for t in self.event_types if _normalise_event_type(t) is None]
        if bad:
            raise ValueError(
                f"event_types: unknown {', '.join(map(repr, bad))}; use {', '.join(NOTIFICATION_TYPES)}"
            )
        if self.max_events is not None and self.max_events < 0:
            raise ValueError(f"max_events: must be >= 0, got {self.max_events}")
        if not 1 <= self.batch <= 1000:
            raise ValueError(f"batch: must be between 1 and 1000, got {self.batch}")
        if self.download_max_bytes < 0:
            raise ValueError(f"download_max_bytes: must be >= 0, got {self.download_max_bytes}")

    @property
    def subscription_path(self) -> str:
        sub = self.subscription or ""
        return sub if sub.startswith("projects/") else f"projects/{self.project}/subscriptions/{sub}"

    @property
    def wanted_types(self) -> frozenset[str]:
        return frozenset(t for t in (_normalise_event_type(x) for x in self.event_types) if t)


def bucket_source(bucket: str) -> str:
    return f"//storage.googleapis.com/projects/_/buckets/{bucket}"


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def notification_to_event(
    message_id: str, data: bytes, attributes: dict[str, str], publish_time: dt.datetime
) -> CloudEvent:
    """One GCS Pub/Sub notification as a CloudEvent; :class:`EventError` when it is not one."""
    kind = attributes.get("eventType", "")
    if kind not in NOTIFICATION_TYPES:
        raise EventError(f"not a Cloud Storage notification: eventType {kind!r}")
    bucket = attributes.get("bucketId")
    name = attributes.get("objectId")
    if not bucket or name is None:
        raise EventError("a Cloud Storage notification without bucketId/objectId attributes")
    payload: Any
    if attributes.get("payloadFormat", "JSON_API_V1") == "JSON_API_V1" and data:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise EventError(f"notification payload is not JSON: {e}") from None
    else:  # payloadFormat NONE: the attributes are all there is
        payload = {"bucket": bucket, "name": name, "generation": attributes.get("objectGeneration")}
    attrs: dict[str, Any] = {
        "specversion": "1.0",
        "id": message_id,
        "source": bucket_source(bucket),
        "type": event_type(kind),
        "subject": f"objects/{name}",
        "time": attributes.get("eventTime") or _rfc3339(publish_time),
        "datacontenttype": "application/json",
    }
    return CloudEvent(attrs, payload)


def object_event(bucket: str, resource: dict[str, Any]) -> CloudEvent:
    """An ``objectfinalize`` event for one listed object (poll mode); id ``NAME#GENERATION``."""
    name = resource["name"]
    attrs: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"{name}#{resource.get('generation', '')}",
        "source": bucket_source(bucket),
        "type": event_type("OBJECT_FINALIZE"),
        "subject": f"objects/{name}",
        "datacontenttype": "application/json",
    }
    when = resource.get("updated") or resource.get("timeCreated")
    if when:
        attrs["time"] = when
    return CloudEvent(attrs, resource)


def with_content(event: CloudEvent, content: bytes) -> CloudEvent:
    data = dict(event.data)
    try:
        data["content"] = content.decode("utf-8")
    except UnicodeDecodeError:
        data["content_base64"] = base64.b64encode(content).decode("ascii")
    return CloudEvent(event.attributes, data)


def _size(event: CloudEvent) -> int | None:
    try:
        return int(event.data.get("size"))
    except (AttributeError, TypeError, ValueError):
        return None


class Downloader:
    """Fetches small finalized objects for ``download: true``."""

    def __init__(self, config: GcsSourceConfig, client: Any):
        self._max = config.download_max_bytes
        self._client = client

    def __call__(self, event: CloudEvent) -> CloudEvent:
        if event.attributes["type"] != event_type("OBJECT_FINALIZE") or not isinstance(event.data, dict):
            return event
        size = _size(event)
        if size is None or size > self._max:
            return event
        from google.api_core import exceptions as gexc

        bucket = event.data.get("bucket")
        name = event.data.get("name")
        generation = event.data.get("generation")
        blob = self._client.bucket(bucket).blob(name, generation=int(generation) if generation else None)
        try:
            return with_content(event, blob.download_as_bytes())
        except gexc.NotFound:
            return event  # deleted (or replaced) since: the metadata still tells what happened


class _NotificationReader:
    def __init__(self, config: GcsSourceConfig):
        self._config = config
        self._subscription = Subscription(config.subscription_path, config.pubsub_endpoint_url)
        self._types = config.wanted_types
        self._prefix = config.object_name_prefix
        self._download = None
        if config.download:
            from meshline.connectors.gcs.client import storage_client

            self._download = Downloader(config, storage_client(config.project, config.endpoint_url))

    def _wanted(self, attributes: dict[str, str]) -> bool:
        if attributes.get("bucketId") not in (None, self._config.bucket):
            return False  # another bucket on a shared topic
        if self._types and attributes.get("eventType") not in self._types:
            return False
        return attributes.get("objectId", "").startswith(self._prefix)

    def pull(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out: list[Message] = []
        skipped: list[str] = []
        for received in self._subscription.pull(max_messages, timeout):
            m = received.message
            attributes = dict(m.attributes)
            publish = m.publish_time
            if not self._wanted(attributes):
                skipped.append(received.ack_id)
                continue
            try:
                event = notification_to_event(m.message_id, m.data, attributes, publish)
            except EventError as e:
                raw = CloudEvent(
                    {
                        "specversion": "1.0",
                        "id": m.message_id,
                        "type": RAW_TYPE,
                        "source": bucket_source(self._config.bucket),
                    },
                    bytes(m.data),
                )
                out.append(Message(received.ack_id, raw, publish.timestamp(), error=str(e)))
                continue
            if self._download is not None:
                event = self._download(event)
            out.append(Message(received.ack_id, event, publish.timestamp()))
        if skipped:
            self._subscription.ack(skipped)  # filtered out: nothing downstream waits for them
        return out

    def ack(self, ack_ids: Sequence[str]) -> None:
        self._subscription.ack(ack_ids)

    def close(self) -> None:
        self._subscription.close()


class _MakeReader:
    """Picklable factory: clients are created on the worker, in ``setup()``."""

    def __init__(self, config: GcsSourceConfig, state: str):
        self._config = config
        self._state = state

    def __call__(self) -> Any:
        if self._config.mode == "poll":
            return PollReader(self._config, self._state, make_event=object_event, downloader=Downloader)
        return _NotificationReader(self._config)


def default_state(integration: str, source: str) -> str:
    return f".meshline/{integration}/{source}.state.json"


def build(config: GcsSourceConfig, ctx: BuildContext) -> ReadFromQueue:
    state = config.state or default_state(ctx.integration, ctx.name)
    from meshline.connectors.unbounded import ReadFromQueue

    return ReadFromQueue(
        _MakeReader(config, state),
        source_name=ctx.name,
        max_events=config.max_events,
        idle_timeout=float(config.idle_timeout) if config.idle_timeout else None,
        batch=config.batch,
    )


SOURCE = Component(
    id="google.storage",
    kind="source",
    config=GcsSourceConfig,
    build=build,
    description="Cloud Storage object events: Pub/Sub notifications (acked after commit) or bucket polling.",
    unbounded=True,
)
