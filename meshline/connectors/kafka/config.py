"""Kafka connection settings shared by the source, the target and the Event Hubs sources.

Security maps onto librdkafka's properties: ``security_protocol`` (``PLAINTEXT``,
``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL``; default ``SASL_SSL`` when a SASL
mechanism is named, else ``PLAINTEXT``), ``sasl_mechanism`` (``PLAIN``,
``SCRAM-SHA-256``, ``SCRAM-SHA-512``) with ``username``/``password``, and TLS
files (``tls_ca``, ``tls_cert``, ``tls_key``). ``properties`` passes any other
librdkafka property through unchanged (an escape hatch; it wins over the rest).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from meshline.config import Duration, doc

__all__ = ["ClientErrors", "KafkaConnection", "KafkaSourceConfig", "KafkaTargetConfig"]

_LOGGER = logging.getLogger("meshline.connectors.kafka")

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


@dataclass(frozen=True, kw_only=True)
class KafkaConnection:
    """Where the brokers are and how to log in."""

    bootstrap_servers: str | list[str] = doc("broker addresses: 'host:9092,host2:9092' or a list")
    security_protocol: SecurityProtocol | None = doc(
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default: SASL_SSL with sasl_mechanism, else PLAINTEXT)",
        None,
    )
    sasl_mechanism: SaslMechanism | None = doc("PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", None)
    username: str | None = doc("SASL user name", None)
    password: str | None = doc("SASL password", None, secret=True)
    tls_ca: str | None = doc("PEM file of the CA that signed the brokers' certificates", None, path=True)
    tls_cert: str | None = doc("PEM file of the client certificate (mutual TLS)", None, path=True)
    tls_key: str | None = doc("PEM file of the client private key (mutual TLS)", None, path=True)
    tls_key_password: str | None = doc("password of tls_key", None, secret=True)
    tls_verify: bool = doc("verify the brokers' certificates and host names", True)
    properties: dict[str, str | int | bool] = doc(
        "extra librdkafka properties, passed through as given",
        {},
        secret="keys",
    )

    def __post_init__(self) -> None:
        if not self.servers:
            raise ValueError("bootstrap_servers: must name at least one host:port, got nothing")
        if self.sasl_mechanism and (not self.username or self.password is None):
            raise ValueError(f"sasl_mechanism {self.sasl_mechanism}: needs username and password")
        if self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL") and not self.sasl_mechanism:
            raise ValueError(f"security_protocol {self.security_protocol}: needs sasl_mechanism")

    @property
    def servers(self) -> str:
        if isinstance(self.bootstrap_servers, list):
            return ",".join(s.strip() for s in self.bootstrap_servers if s.strip())
        return ",".join(s.strip() for s in self.bootstrap_servers.split(",") if s.strip())

    @property
    def first_server(self) -> str:
        return self.servers.split(",", 1)[0]

    def client_properties(self) -> dict[str, Any]:
        """librdkafka properties for this connection (secrets included: never log them)."""
        props: dict[str, Any] = {"bootstrap.servers": self.servers}
        protocol = self.security_protocol or ("SASL_SSL" if self.sasl_mechanism else "PLAINTEXT")
        props["security.protocol"] = protocol
        if self.sasl_mechanism:
            props["sasl.mechanism"] = self.sasl_mechanism
            props["sasl.username"] = self.username
            props["sasl.password"] = self.password
        if self.tls_ca:
            props["ssl.ca.location"] = self.tls_ca
        if self.tls_cert:
            props["ssl.certificate.location"] = self.tls_cert
        if self.tls_key:
            props["ssl.key.location"] = self.tls_key
        if self.tls_key_password:
            props["ssl.key.password"] = self.tls_key_password
        if not self.tls_verify:
            props["enable.ssl.certificate.verification"] = False
            props["ssl.endpoint.identification.algorithm"] = "none"
        props.update(self.properties)
        return props


@dataclass(frozen=True, kw_only=True)
class KafkaSourceConfig(KafkaConnection):
    """Read Kafka topics; offsets are committed after the runner commits the work (at least once)."""

    topics: str | list[str] = doc("topic name, or a list of topics")
    group_id: str | None = doc(
        "consumer group whose offsets are read and committed (default: meshline.INTEGRATION.SOURCE)",
        None,
    )
    start: Literal["earliest", "latest", "timestamp"] = doc(
        "where a partition without a committed offset starts: earliest, latest or timestamp", "earliest"
    )
    start_time: str | int | None = doc(
        "with start: timestamp, the first record time: RFC 3339 (2024-05-01T00:00:00Z) or epoch milliseconds",
        None,
    )
    max_events: int | None = doc("end the source after this many records (per worker process)", None)
    idle_timeout: Duration | None = doc(
        "end a partition's read once it has read everything there is and got no record for "
        "this long, e.g. 30s (0: never)",
        None,
    )
    batch: int = doc("records per partition per bundle (the commit granularity)", 5000)
    poll: Duration = doc(
        "how long a fetch waits for records; idle, the wait grows to 5s (a record ends it at once)",
        Duration(1.0),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.topic_list:
            raise ValueError("topics: must name at least one topic, got nothing")
        if self.start == "timestamp" and self.start_time is None:
            raise ValueError("start: timestamp needs start_time (RFC 3339 or epoch milliseconds)")
        if self.start_time is not None:
            self.start_millis  # noqa: B018 - validates the value
        if self.max_events is not None and self.max_events < 0:
            raise ValueError(f"max_events: must be >= 0, got {self.max_events}")
        if not 1 <= self.batch <= 1_000_000:
            raise ValueError(f"batch: must be between 1 and 1000000, got {self.batch}")

    @property
    def topic_list(self) -> list[str]:
        raw = self.topics if isinstance(self.topics, list) else self.topics.split(",")
        return [t.strip() for t in raw if t.strip()]

    @property
    def start_millis(self) -> int | None:
        v = self.start_time
        if v is None:
            return None
        if isinstance(v, int) or (isinstance(v, str) and v.isdigit()):
            return int(v)
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"start_time: expected RFC 3339 or epoch milliseconds, got {v!r}") from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        return int(t.timestamp() * 1000)


@dataclass(frozen=True, kw_only=True)
class KafkaTargetConfig(KafkaConnection):
    """Write events to a Kafka topic with the CloudEvents Kafka binding (idempotent producer)."""

    topic: str = doc("topic to write to")
    mode: Literal["binary", "structured"] = doc(
        "CloudEvents Kafka binding: binary (ce_* headers, data as value) or structured (JSON value)", "binary"
    )
    key_attribute: str | None = doc(
        "event attribute used as record key (default: partitionkey, else subject, else id)", None
    )
    linger: Duration = doc("how long the producer waits to fill a batch (linger.ms)", Duration(0.02))
    batch_bytes: int = doc("maximum producer batch size in bytes (batch.size)", 1_000_000)
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = doc("record batch compression", "lz4")
    delivery_timeout: Duration = doc(
        "how long one attempt may wait for the brokers' acknowledgement (message.timeout.ms)", Duration(30.0)
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.topic:
            raise ValueError("topic: must not be empty")
        if self.batch_bytes < 1:
            raise ValueError(f"batch_bytes: must be >= 1, got {self.batch_bytes}")


class ClientErrors:
    """librdkafka ``error_cb``: each kind of client error logged at most once a minute.

    librdkafka itself prints every failed connection attempt (several a second while a
    broker is down); Meshline silences that (``log_level: 0``) and logs through here.
    """

    def __init__(self, who: str, every: float = 60.0):
        self._who = who
        self._every = every
        self._last: dict[int, float] = {}

    def __call__(self, err: Any) -> None:
        now = time.monotonic()
        code = err.code()
        if now - self._last.get(code, -self._every) >= self._every:
            self._last[code] = now
            _LOGGER.warning("%s: Kafka: %s", self._who, err.str())
