"""``azure.eventhubs`` source: an event hub read through Event Hubs' Kafka endpoint.

Event Hubs speaks the Kafka protocol on ``NAMESPACE.servicebus.windows.net:9093``
(``SASL_SSL``, mechanism ``PLAIN``, user ``$ConnectionString``, password = the
connection string), so this source is the :mod:`kafka <meshline.connectors.kafka>`
source underneath: one restriction per partition, offsets committed for the
consumer group after the runner commits. Configure it with ``connection_string``
or ``namespace`` + ``key_name`` + ``key``; ``endpoint_url`` and
``security_protocol`` point it at another endpoint (a local Kafka broker in tests).

Messages that already are CloudEvents (Kafka binding: ``ce_*`` headers or a
structured ``application/cloudevents+json`` value) pass through; any other
message becomes a ``com.microsoft.azure.eventhub.message`` event with source
``sb://NAMESPACE.servicebus.windows.net/EVENT_HUB`` and id
``EVENT_HUB-PARTITION-OFFSET``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from meshline.config import Duration, doc
from meshline.connectors.kafka.source import KafkaDecoder, RecordDecoder
from meshline.registry import BuildContext, Component
from meshline.secrets import is_deferred, join

if TYPE_CHECKING:
    from meshline.connectors.kafka.read import ReadFromKafkaPartitions

__all__ = ["SOURCE", "EventHubsConnection", "EventHubsSourceConfig", "parse_connection_string"]

MESSAGE_TYPE = "com.microsoft.azure.eventhub.message"
_SUFFIX = ".servicebus.windows.net"


def parse_connection_string(value: str) -> dict[str, str]:
    """``Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=…]`` as a dict."""
    out: dict[str, str] = {}
    for part in value.split(";"):
        if not part.strip():
            continue
        name, sep, v = part.partition("=")
        if not sep:
            raise ValueError("connection_string: expected NAME=VALUE pairs separated by ';'")
        out[name.strip()] = v.strip()
    if "Endpoint" not in out:
        raise ValueError("connection_string: has no Endpoint=sb://NAMESPACE.servicebus.windows.net/")
    return out


@dataclass(frozen=True, kw_only=True)
class EventHubsConnection:
    """An Event Hubs namespace and how to log in to its Kafka endpoint."""

    connection_string: str | None = doc(
        "namespace or event hub connection string (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…)",
        None,
        secret=True,
    )
    namespace: str | None = doc(
        "namespace name or host (NAME.servicebus.windows.net), with key_name + key", None
    )
    key_name: str | None = doc("shared access policy name, with namespace + key", None)
    key: str | None = doc("shared access key, with namespace + key_name", None, secret=True)
    consumer_group: str = doc("consumer group (the Kafka group id)", "$Default")
    endpoint_url: str | None = doc(
        "host:port of the Kafka endpoint (default: NAMESPACE.servicebus.windows.net:9093)", None
    )
    security_protocol: Literal["SASL_SSL", "SASL_PLAINTEXT"] = doc(
        "SASL_SSL (Event Hubs); SASL_PLAINTEXT only for a local test broker", "SASL_SSL"
    )
    tls_ca: str | None = doc("PEM CA file (default: the system's trust store)", None, path=True)
    start: Literal["earliest", "latest", "timestamp"] = doc(
        "where a partition without a committed offset starts", "earliest"
    )
    start_time: str | int | None = doc("with start: timestamp: RFC 3339 or epoch milliseconds", None)
    max_events: int | None = doc("end the source after this many messages (per worker process)", None)
    idle_timeout: Duration | None = doc("end a partition's read after this long without a message", None)
    batch: int = doc("messages per partition per bundle (the commit granularity)", 5000)
    poll: Duration = doc(
        "how long a fetch waits for messages; idle, the wait grows to 5s (a message ends it at once)",
        Duration(1.0),
    )

    def __post_init__(self) -> None:
        if self.connection_string and is_deferred(self.connection_string):
            raise ValueError(
                "connection_string: the workers read it from Secret Manager, so its Endpoint is unknown "
                "here: give namespace + key_name + key (a secret parameter) instead"
            )
        if self.connection_string:
            parse_connection_string(self.connection_string)
        elif not (self.namespace and self.key_name and self.key):
            raise ValueError("needs connection_string, or namespace + key_name + key")
        if self.max_events is not None and self.max_events < 0:
            raise ValueError(f"max_events: must be >= 0, got {self.max_events}")
        if not 1 <= self.batch <= 1_000_000:
            raise ValueError(f"batch: must be between 1 and 1000000, got {self.batch}")
        if self.start == "timestamp" and self.start_time is None:
            raise ValueError("start: timestamp needs start_time")

    @property
    def host(self) -> str:
        """The namespace's host name."""
        if self.connection_string:
            endpoint = parse_connection_string(self.connection_string)["Endpoint"]
            return endpoint.split("://", 1)[-1].strip("/").split("/", 1)[0].split(":", 1)[0]
        ns = (self.namespace or "").split("://", 1)[-1].strip("/")
        return ns if "." in ns else ns + _SUFFIX

    @property
    def entity_path(self) -> str | None:
        if self.connection_string:
            return parse_connection_string(self.connection_string).get("EntityPath")
        return None

    def password(self) -> str:
        """The SASL password: the connection string (a :class:`~meshline.secrets.Secret` when the key is one,
        so the pickled source holds a reference to the key, never the key)."""
        if self.connection_string:
            return self.connection_string
        assert self.key is not None
        return join(
            f"Endpoint=sb://{self.host}/;SharedAccessKeyName={self.key_name};SharedAccessKey=", self.key
        )

    def kafka_properties(self) -> dict[str, Any]:
        """librdkafka properties for the Kafka endpoint (holds the secret: never log them)."""
        props: dict[str, Any] = {
            "bootstrap.servers": self.endpoint_url or f"{self.host}:9093",
            "security.protocol": self.security_protocol,
            "sasl.mechanism": "PLAIN",
            "sasl.username": "$ConnectionString",
            "sasl.password": self.password(),
            "group.id": self.consumer_group,
            # Event Hubs closes idle connections after 240 s; stay below it.
            "socket.keepalive.enable": True,
            "metadata.max.age.ms": 180_000,
        }
        if self.tls_ca:
            props["ssl.ca.location"] = self.tls_ca
        return props

    def read_options(self) -> dict[str, Any]:
        from meshline.connectors.kafka.config import KafkaSourceConfig

        millis = None
        if self.start_time is not None:
            millis = KafkaSourceConfig(
                bootstrap_servers="x", topics="x", start="timestamp", start_time=self.start_time
            ).start_millis
        return {
            "start": self.start,
            "start_millis": millis,
            "max_events": self.max_events,
            "idle_timeout": float(self.idle_timeout) if self.idle_timeout else None,
            "batch": self.batch,
            "poll": float(self.poll),
        }


@dataclass(frozen=True, kw_only=True)
class EventHubsSourceConfig(EventHubsConnection):
    """Read an Azure event hub through its Kafka endpoint (at least once)."""

    event_hub: str | None = doc("event hub name (default: the connection string's EntityPath)", None)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.event_hub or self.entity_path):
            raise ValueError("event_hub: required (or an EntityPath in connection_string)")

    @property
    def hub(self) -> str:
        return self.event_hub or self.entity_path or ""


def build(config: EventHubsSourceConfig, ctx: BuildContext) -> ReadFromKafkaPartitions:
    from meshline.connectors.kafka.read import ReadFromKafkaPartitions

    source = f"sb://{config.host}/{config.hub}"
    decoder = KafkaDecoder(config.host, event_type=MESSAGE_TYPE, source=source)
    return ReadFromKafkaPartitions(
        config.kafka_properties(),
        [config.hub],
        RecordDecoder(decoder),
        source_name=ctx.name,
        **config.read_options(),
    )


SOURCE = Component(
    id="azure.eventhubs",
    kind="source",
    config=EventHubsSourceConfig,
    build=build,
    description="Azure Event Hubs through its Kafka endpoint; offsets committed after the runner commits.",
    unbounded=True,
)
