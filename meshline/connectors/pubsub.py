"""``google.pubsub`` source: pull a subscription, acknowledge after the runner commits.

Messages that already are CloudEvents — structured (``content-type:
application/cloudevents+json``) or binary (``ce-*`` attributes, per the
CloudEvents Pub/Sub binding) — pass through as those events. Any other message
becomes a ``com.google.cloud.pubsub.message`` event: id = message id, source =
``//pubsub.googleapis.com/projects/P/subscriptions/S``, time = publish time,
data = the body (JSON when it parses, else bytes), attributes with valid
CloudEvents names as extensions. A message that claims to be a CloudEvent but is
broken is dead-lettered (stage ``decode``) with its raw body.

Acknowledgement follows :mod:`meshline.connectors.unbounded`: only in the bundle
finalizer. Set the subscription's ack deadline above your bundle commit time
(Flink: the checkpoint interval), or messages are redelivered (at least once).
``endpoint_url`` (or ``$PUBSUB_EMULATOR_HOST``) points at the emulator.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshline.attributes import bad_character
from meshline.bindings import decode_data, from_http
from meshline.config import Duration, doc
from meshline.connectors.queues import Message
from meshline.errors import EventError
from meshline.events import CloudEvent, is_valid_extension_name
from meshline.registry import BuildContext, Component

if TYPE_CHECKING:
    from meshline.connectors.unbounded import ReadFromQueue

__all__ = ["SOURCE", "PubSubSourceConfig", "Subscription", "message_to_event"]

_LOGGER = logging.getLogger(__name__)
MESSAGE_TYPE = "com.google.cloud.pubsub.message"


@dataclass(frozen=True, kw_only=True)
class PubSubSourceConfig:
    """Read a Google Cloud Pub/Sub subscription (at least once)."""

    project: str = doc("the Google Cloud project of the subscription")
    subscription: str = doc("the subscription id (or its full projects/P/subscriptions/S path)")
    endpoint_url: str | None = doc("host:port of a Pub/Sub endpoint, e.g. the emulator (plaintext)", None)
    max_events: int | None = doc("end the source after this many messages", None)
    idle_timeout: Duration | None = doc(
        "end the source after this long without a message, e.g. 30s (0: never)", None
    )
    batch: int = doc("messages per pull and per acknowledgement batch", 100)

    def __post_init__(self) -> None:
        if self.max_events is not None and self.max_events < 0:
            raise ValueError(f"max_events: must be >= 0, got {self.max_events}")
        if not 1 <= self.batch <= 1000:
            raise ValueError(f"batch: must be between 1 and 1000, got {self.batch}")

    @property
    def path(self) -> str:
        if self.subscription.startswith("projects/"):
            return self.subscription
        return f"projects/{self.project}/subscriptions/{self.subscription}"


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def message_to_event(
    subscription_path: str,
    message_id: str,
    data: bytes,
    attributes: dict[str, str],
    publish_time: dt.datetime,
) -> CloudEvent:
    """One Pub/Sub message as a CloudEvent; raises :class:`EventError` for a broken CloudEvent."""
    lowered = {k.lower(): v for k, v in attributes.items()}
    if "content-type" in lowered or "ce-specversion" in lowered:
        events = from_http(lowered, data)
        if events is not None:
            if len(events) != 1:
                raise EventError("a Pub/Sub message must hold exactly one CloudEvent")
            return events[0]
    attrs: dict[str, Any] = {
        "specversion": "1.0",
        "id": message_id,
        "source": f"//pubsub.googleapis.com/{subscription_path}",
        "type": MESSAGE_TYPE,
        "time": _rfc3339(publish_time),
    }
    for k, v in attributes.items():
        name = k.lower()
        if is_valid_extension_name(name) and name not in attrs and bad_character(v) is None:  # a String
            attrs[name] = v
    return CloudEvent(attrs, decode_data(data, None))


class Subscription:
    """Raw pull/acknowledge on one subscription; shared by every Pub/Sub-fed source.

    ``endpoint_url`` (host:port, plaintext) points at an emulator; without it the
    client follows ``$PUBSUB_EMULATOR_HOST`` or Google's default credentials.
    """

    def __init__(self, path: str, endpoint_url: str | None = None):
        from google.api_core import exceptions
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        self.path = path
        self._timeouts = (exceptions.DeadlineExceeded, exceptions.ServiceUnavailable)
        if endpoint_url:
            import grpc
            from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

            channel = grpc.insecure_channel(endpoint_url)
            self._client = pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
        else:
            self._client = pubsub_v1.SubscriberClient()

    def pull(self, max_messages: int, timeout: float) -> Sequence[Any]:
        """Up to ``max_messages`` ``ReceivedMessage``s (``ack_id``, ``message``); none on a timeout."""
        try:
            response = self._client.pull(
                request={"subscription": self.path, "max_messages": max_messages}, timeout=max(timeout, 0.5)
            )
        except self._timeouts:
            return []
        return list(response.received_messages)

    def ack(self, ack_ids: Sequence[str]) -> None:
        for i in range(0, len(ack_ids), 1000):
            self._client.acknowledge(
                request={"subscription": self.path, "ack_ids": list(ack_ids[i : i + 1000])}
            )

    def close(self) -> None:
        self._client.close()


class _PubSubReader:
    def __init__(self, config: PubSubSourceConfig, source_name: str):
        self._path = config.path
        self._subscription = Subscription(config.path, config.endpoint_url)

    def pull(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out = []
        for received in self._subscription.pull(max_messages, timeout):
            m = received.message
            publish = m.publish_time
            try:
                event = message_to_event(self._path, m.message_id, m.data, dict(m.attributes), publish)
                out.append(Message(received.ack_id, event, publish.timestamp()))
            except EventError as e:
                raw = CloudEvent(
                    {
                        "specversion": "1.0",
                        "id": m.message_id,
                        "type": MESSAGE_TYPE,
                        "source": f"//pubsub.googleapis.com/{self._path}",
                    },
                    bytes(m.data),
                )
                out.append(Message(received.ack_id, raw, publish.timestamp(), error=str(e)))
        return out

    def ack(self, ack_ids: Sequence[str]) -> None:
        self._subscription.ack(ack_ids)

    def close(self) -> None:
        self._subscription.close()


class _MakeReader:
    """Picklable factory: the client is created on the worker, in ``setup()``."""

    def __init__(self, config: PubSubSourceConfig, source_name: str):
        self._config = config
        self._name = source_name

    def __call__(self) -> _PubSubReader:
        return _PubSubReader(self._config, self._name)


def build(config: PubSubSourceConfig, ctx: BuildContext) -> ReadFromQueue:
    from meshline.connectors.unbounded import ReadFromQueue

    return ReadFromQueue(
        _MakeReader(config, ctx.name),
        source_name=ctx.name,
        max_events=config.max_events,
        idle_timeout=float(config.idle_timeout) if config.idle_timeout else None,  # 0s: never
        batch=config.batch,
    )


SOURCE = Component(
    id="google.pubsub",
    kind="source",
    config=PubSubSourceConfig,
    build=build,
    description="Google Cloud Pub/Sub subscription; acknowledged after the runner commits (at least once).",
    unbounded=True,
)
