"""``azure.activitylogs`` source: Azure Activity Log records exported to Event Hubs.

A diagnostic setting that streams a subscription's Activity Log to Event Hubs
writes messages (to ``insights-activity-logs`` by default) whose body is
``{"records": [...]}``. Each record becomes one CloudEvent (SPEC §2):

- ``type`` ``com.microsoft.azure.monitor.activity-log``;
- ``source`` the record's ``resourceId``;
- ``id`` ``correlationId-eventDataId`` (``operationId`` when the record has no
  ``eventDataId``; that id may sit at the top level or under ``properties``);
- ``time`` the record's ``time``; ``subject`` its ``operationName``;
- extensions ``category``, ``resulttype`` and ``level`` (for cheap filters);
- ``data`` the record, unchanged.

``categories`` keeps only records of those categories (Administrative, Security,
ServiceHealth, Alert, Recommendation, Policy, Autoscale, ResourceHealth; case
does not matter); others are skipped and committed. A message that is not
``{"records": [...]}`` JSON is dead-lettered whole (stage ``decode``, raw body);
a record without ``resourceId`` or ``time`` is dead-lettered on its own.
Reading, offsets and login are those of :mod:`meshline.connectors.azure.eventhubs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from meshline.config import doc
from meshline.connectors.azure.eventhubs import EventHubsConnection
from meshline.events import CloudEvent
from meshline.registry import BuildContext, Component

if TYPE_CHECKING:
    from meshline.connectors.kafka.read import Decoded, ReadFromKafkaPartitions

__all__ = ["ACTIVITY_LOG_TYPE", "CATEGORIES", "SOURCE", "ActivityLogDecoder", "ActivityLogsSourceConfig"]

ACTIVITY_LOG_TYPE = "com.microsoft.azure.monitor.activity-log"
RAW_TYPE = "com.microsoft.azure.eventhub.message"
CATEGORIES = (
    "Administrative",
    "Security",
    "ServiceHealth",
    "Alert",
    "Recommendation",
    "Policy",
    "Autoscale",
    "ResourceHealth",
)
_BY_LOWER = {c.lower(): c for c in CATEGORIES}


@dataclass(frozen=True, kw_only=True)
class ActivityLogsSourceConfig(EventHubsConnection):
    """Read Azure Activity Log records exported to an event hub (one event per record)."""

    event_hub: str = doc("event hub the diagnostic setting exports to", "insights-activity-logs")
    categories: list[str] = doc(
        "keep only these categories: " + ", ".join(CATEGORIES) + " (default: all)", []
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [c for c in self.categories if c.lower() not in _BY_LOWER]
        if unknown:
            raise ValueError(f"categories: unknown {unknown}; expected some of {', '.join(CATEGORIES)}")


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


class ActivityLogDecoder:
    """One Event Hubs message → one event per Activity Log record (picklable)."""

    def __init__(self, raw_source: str, categories: Sequence[str] = ()):
        self._raw_source = raw_source
        self._keep = frozenset(c.lower() for c in categories) or None

    def _raw(self, topic: str, partition: int, offset: int, value: bytes | None) -> CloudEvent:
        attrs = {
            "specversion": "1.0",
            "id": f"{topic}-{partition}-{offset}",
            "source": self._raw_source,
            "type": RAW_TYPE,
        }
        return CloudEvent(attrs, bytes(value) if value else None)

    def decode(self, topic: str, partition: int, offset: int, value: bytes | None) -> list[Decoded]:
        try:
            body = orjson.loads(value or b"")
        except orjson.JSONDecodeError as e:
            return [(self._raw(topic, partition, offset, value), f"activity log message is not JSON: {e}")]
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            reason = 'activity log message must be a JSON object {"records": [...]}'
            return [(self._raw(topic, partition, offset, value), reason)]
        out: list[Decoded] = []
        for i, record in enumerate(records):
            decoded = self.record(record, topic, partition, offset, i)
            if decoded is not None:
                out.append(decoded)
        return out

    def record(self, record: Any, topic: str, partition: int, offset: int, index: int) -> Decoded | None:
        """One record as an event, ``None`` when its category is filtered out."""
        fallback_id = f"{topic}-{partition}-{offset}-{index}"
        if not isinstance(record, dict):
            bad = CloudEvent(
                {
                    "specversion": "1.0",
                    "id": fallback_id,
                    "source": self._raw_source,
                    "type": ACTIVITY_LOG_TYPE,
                },
                record,
            )
            return bad, f"activity log record {index} is not a JSON object"
        category = _str(record.get("category"))
        if self._keep is not None and (category or "").lower() not in self._keep:
            return None
        found = record.get("properties")
        props: dict[str, Any] = found if isinstance(found, dict) else {}
        correlation = _str(record.get("correlationId"))
        second = (
            _str(record.get("eventDataId"))
            or _str(props.get("eventDataId"))
            or _str(record.get("operationId"))
            or _str(props.get("operationId"))
        )
        if correlation and second:
            event_id = f"{correlation}-{second}"
        else:
            event_id = correlation or second or fallback_id
        resource = _str(record.get("resourceId")) or _str(record.get("ResourceId"))
        attrs: dict[str, Any] = {
            "specversion": "1.0",
            "id": event_id,
            "source": resource or self._raw_source,
            "type": ACTIVITY_LOG_TYPE,
        }
        time = _str(record.get("time"))
        if time:
            attrs["time"] = time
        subject = _str(record.get("operationName"))
        if subject:
            attrs["subject"] = subject
        if category:
            attrs["category"] = _BY_LOWER.get(category.lower(), category)
        for key, ext in (("resultType", "resulttype"), ("level", "level")):
            v = _str(record.get(key))
            if v:
                attrs[ext] = v
        attrs["datacontenttype"] = "application/json"
        event = CloudEvent(attrs, record)
        missing = [k for k, v in (("resourceId", resource), ("time", time)) if not v]
        if missing:
            return event, f"activity log record {index} has no {' or '.join(missing)}"
        return event, None


class _ActivityLogRecords:
    """Factory (picklable) → the per-message callable the read core calls."""

    def __init__(self, decoder: ActivityLogDecoder):
        self._decoder = decoder

    def __call__(self) -> Any:
        decode = self._decoder.decode

        def run(m: Any) -> Sequence[Decoded]:
            return decode(m.topic(), m.partition(), m.offset(), m.value())

        return run


def build(config: ActivityLogsSourceConfig, ctx: BuildContext) -> ReadFromKafkaPartitions:
    from meshline.connectors.kafka.read import ReadFromKafkaPartitions

    decoder = ActivityLogDecoder(f"sb://{config.host}/{config.event_hub}", config.categories)
    return ReadFromKafkaPartitions(
        config.kafka_properties(),
        [config.event_hub],
        _ActivityLogRecords(decoder),
        source_name=ctx.name,
        **config.read_options(),
    )


SOURCE = Component(
    id="azure.activitylogs",
    kind="source",
    config=ActivityLogsSourceConfig,
    build=build,
    description=(
        "Azure Activity Log records exported to Event Hubs (Kafka endpoint), one event per record, "
        "filtered by category."
    ),
    unbounded=True,
)
