"""``kafka`` source: records → CloudEvents (SPEC §2), offsets committed after the runner commits.

A record that already is a CloudEvent — structured (``content-type:
application/cloudevents+json``) or binary (``ce_*`` headers), per the CloudEvents
Kafka binding — passes through as that event. Any other record becomes a
``dev.meshline.kafka.message`` event: source ``kafka://BOOTSTRAP/TOPIC``, id
``TOPIC-PARTITION-OFFSET``, time = the record's timestamp, data = the value
(JSON when it parses, else bytes), the key as the ``partitionkey`` extension and
headers whose names are valid CloudEvents attribute names as extensions (when key
and values are UTF-8 text a CloudEvents String can hold). A record that claims to
be a CloudEvent but is broken is dead-lettered (stage ``decode``) with its raw value.
A CloudEvent's record key is never added to it (Kafka binding §3.1).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from meshline.attributes import bad_character
from meshline.bindings import from_kafka
from meshline.connectors.kafka.config import KafkaSourceConfig
from meshline.errors import EventError
from meshline.events import STRUCTURED_CT, CloudEvent, is_valid_extension_name, parse_json
from meshline.registry import BuildContext, Component

if TYPE_CHECKING:
    from meshline.connectors.kafka.read import Decoded, ReadFromKafkaPartitions

__all__ = ["MESSAGE_TYPE", "SOURCE", "KafkaDecoder", "ReadFromKafka", "RecordDecoder", "record_time"]

MESSAGE_TYPE = "dev.meshline.kafka.message"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@functools.lru_cache(maxsize=4096)
def record_time(millis: int) -> str:
    """RFC 3339 (UTC, milliseconds) of a Kafka record timestamp."""
    t = _EPOCH + dt.timedelta(milliseconds=millis)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class KafkaDecoder:
    """One Kafka record → one event (pass-through or wrapped); picklable, stateless."""

    def __init__(self, bootstrap: str, event_type: str = MESSAGE_TYPE, source: str | None = None):
        self._bootstrap = bootstrap
        self._type = event_type
        self._source = source  # fixed source attribute, else kafka://BOOTSTRAP/TOPIC
        self._sources: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"_bootstrap": self._bootstrap, "_type": self._type, "_source": self._source}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._sources = {}

    def source_of(self, topic: str) -> str:
        s = self._sources.get(topic)
        if s is None:
            s = self._sources[topic] = self._source or f"kafka://{self._bootstrap}/{topic}"
        return s

    def decode(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None,
        millis: int,
    ) -> Decoded:
        if headers:
            try:
                event = _passthrough(key, value, headers)
            except EventError as e:
                return self.wrap(topic, partition, offset, None, value, None, millis, raw=True), str(e)
            if event is not None:
                return event, None
        return self.wrap(topic, partition, offset, key, value, headers, millis), None

    def wrap(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None,
        millis: int,
        raw: bool = False,
    ) -> CloudEvent:
        attrs: dict[str, Any] = {
            "specversion": "1.0",
            "id": f"{topic}-{partition}-{offset}",
            "source": self.source_of(topic),
            "type": self._type,
        }
        if millis > 0:
            try:
                attrs["time"] = record_time(millis)
            except OverflowError:
                pass  # beyond year 9999: no RFC 3339 timestamp
        if key is not None:
            text = _text(key)
            if text is not None:
                attrs["partitionkey"] = text
        if headers:
            for name, v in headers:
                n = name.lower()
                if v is not None and n not in attrs and is_valid_extension_name(n):
                    text = _text(v)
                    if text is not None:
                        attrs[n] = text
        if raw or not value:
            return CloudEvent(attrs, bytes(value) if value else None)
        try:
            data: Any = parse_json(value)
        except EventError:
            data = bytes(value)
        return CloudEvent(attrs, data)


def _text(v: bytes) -> str | None:
    """A key or header value as an attribute: UTF-8 text a CloudEvents String can hold, else none."""
    try:
        text = v.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() or bad_character(text) is None else None


def _passthrough(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]]
) -> CloudEvent | None:
    """The CloudEvent in the record, ``None`` when it is none, :class:`EventError` when broken."""
    for name, v in headers:
        n = name.lower()
        if n == "ce_specversion" or (
            n == "content-type"
            and v is not None
            and v.split(b";", 1)[0].strip().lower() == STRUCTURED_CT.encode()
        ):
            return from_kafka(key, value, headers)
    return None


class RecordDecoder:
    """Adapter: confluent-kafka ``Message`` → decoded events (what the read core calls)."""

    def __init__(self, decoder: KafkaDecoder):
        self._decoder = decoder

    def __call__(self) -> Any:
        decode = self._decoder.decode

        def run(m: Any) -> Sequence[Decoded]:
            return (
                decode(
                    m.topic(), m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]
                ),
            )

        return run


def group_id(config: KafkaSourceConfig, ctx: BuildContext) -> str:
    return config.group_id or f"meshline.{ctx.integration}.{ctx.name}"


def ReadFromKafka(
    config: KafkaSourceConfig, *, group: str, source_name: str = "kafka"
) -> ReadFromKafkaPartitions:
    """``PBegin`` → ``(events, dead_letters)`` from Kafka topics (SPEC §2 events)."""
    from meshline.connectors.kafka.read import ReadFromKafkaPartitions

    props = config.client_properties()
    props["group.id"] = group
    return ReadFromKafkaPartitions(
        props,
        config.topic_list,
        RecordDecoder(KafkaDecoder(config.first_server)),
        source_name=source_name,
        start=config.start,
        start_millis=config.start_millis,
        max_events=config.max_events,
        idle_timeout=float(config.idle_timeout) if config.idle_timeout else None,  # 0s: never
        batch=config.batch,
        poll=float(config.poll),
    )


def build(config: KafkaSourceConfig, ctx: BuildContext) -> ReadFromKafkaPartitions:
    return ReadFromKafka(config, group=group_id(config, ctx), source_name=ctx.name)


SOURCE = Component(
    id="kafka",
    kind="source",
    config=KafkaSourceConfig,
    build=build,
    description=(
        "Kafka topics, one restriction per partition; group offsets committed after the runner commits "
        "(at least once). SASL PLAIN/SCRAM and TLS."
    ),
    unbounded=True,
)
