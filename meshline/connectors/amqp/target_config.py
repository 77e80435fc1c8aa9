"""``amqp`` target: config and declaration (Beam transform: :mod:`meshline.connectors.amqp.target`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from meshline.config import Duration, doc
from meshline.connectors.amqp.codec import check_url, template_fields
from meshline.connectors.late import Late
from meshline.registry import Component

__all__ = ["TARGET", "AmqpTargetConfig"]


@dataclass(frozen=True, kw_only=True)
class AmqpTargetConfig:
    """Publish events to a RabbitMQ / AMQP 0-9-1 exchange with publisher confirms."""

    url: str = doc("amqp://user:password@host:port/vhost", secret="url")
    exchange: str = doc("the exchange ('' is the default exchange: routing_key names the queue)", "")
    routing_key: str = doc("routing key template: {type}, {source}, {subject}, {id} or any attribute", "")
    mode: Literal["binary", "structured"] = doc(
        "CloudEvents AMQP binding: 'binary' (cloudEvents:* headers, data as body) or 'structured'", "binary"
    )
    header_prefix: Literal["cloudEvents:", "cloudEvents_"] = doc(
        "binary mode header prefix ('cloudEvents_' where ':' is not allowed, e.g. JMS)", "cloudEvents:"
    )
    persistent: bool = doc("delivery mode 2: messages survive a broker restart on durable queues", True)
    mandatory: bool = doc("dead-letter messages no queue is bound for (basic.return)", True)
    batch: int = doc("messages published before waiting for their confirms", 500)
    confirm_timeout: Duration = doc("how long to wait for the broker's confirms of a batch", Duration(30))

    def __post_init__(self) -> None:
        check_url(self.url)
        try:
            template_fields(self.routing_key)
        except ValueError as e:
            raise ValueError(f"routing_key: {e}") from None
        if not 1 <= self.batch <= 100_000:
            raise ValueError(f"batch: must be between 1 and 100000, got {self.batch}")


TARGET = Component(
    id="amqp",
    kind="target",
    config=AmqpTargetConfig,
    build=Late("meshline.connectors.amqp.target:build"),
    description="Publish to a RabbitMQ / AMQP 0-9-1 exchange (publisher confirms, CloudEvents AMQP binding).",
)
