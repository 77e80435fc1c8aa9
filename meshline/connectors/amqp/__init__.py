"""``amqp`` source and target: RabbitMQ and other AMQP 0-9-1 brokers (pika).

Source: reads ``queue`` (optionally declaring it and binding it to ``exchange``
with ``routing_key``) through a consumer with ``prefetch`` (``basic.qos``) and a
local buffer. Messages that already are CloudEvents pass through — structured
(content type ``application/cloudevents+json``) or binary (``cloudEvents:*`` /
``cloudEvents_*`` headers, the CloudEvents AMQP binding's application
properties, with the content type as ``datacontenttype``). Any other message
becomes a ``dev.meshline.amqp.message`` event: id = ``message_id``, else a
digest of the message (stable across redeliveries); source
``amqp://HOST/VHOST/QUEUE``; time = the ``timestamp`` property (the element's
event time is the arrival time: producers write what they like there); data = JSON when
it parses, else text, else bytes. A message that claims to be a CloudEvent but is
broken is dead-lettered (stage ``decode``).

Acknowledgement follows :mod:`meshline.connectors.unbounded`: only in the bundle
finalizer, after the runner committed the bundle. In AMQP an ack must travel on
the channel that received the message, and delivery tags die with that channel.
So each worker process keeps one reader per source — one connection, channel and
consumer for its whole life, shared by every DoFn instance of that source (a
runner may keep one instance waiting for its finalizer while another reads on;
with a consumer each, the first would sit on every prefetched message). All
calls are serialised by a lock, since finalizers may run on another thread. An ack id is
``GENERATION:TAG``, and after a reconnect the tags of the old channel are
ignored (the broker already requeued those messages: they come again, at least
once). Acks use ``multiple=True`` up to the highest tag below which every
outstanding tag is acknowledged, then single acks for the rest; acknowledging a
tag twice would close the channel, so already acknowledged tags are skipped
(finalizers may repeat). Messages never acknowledged — a failed bundle, a run
killed midway — are requeued by the broker when the connection closes, or by
RabbitMQ's ``consumer_timeout`` (default 30 min) if a finalizer never comes.

Target: publishes to ``exchange`` with ``routing_key`` (a template: ``{type}``,
``{source}``, ``{subject}`` or any attribute) using publisher confirms and
``mandatory``; binary mode by default (``cloudEvents:*`` headers), structured
optional; persistent delivery mode. A nack, a lost connection or a closed channel
is retried per the trigger's ``delivery``; an unroutable message, a missing
exchange (404) or a refused permission (403) is dead-lettered at once with the
broker's reason.

The ``url`` (``amqp://user:password@host:port/vhost``) holds a credential: it is
never logged, and errors show it with the password masked.
"""

from __future__ import annotations

from typing import Any

from meshline.connectors.amqp.codec import event_to_message, message_to_event, safe_url
from meshline.connectors.amqp.source import SOURCE, AmqpSourceConfig, ReadFromAmqp
from meshline.connectors.amqp.target_config import TARGET, AmqpTargetConfig

__all__ = [
    "SOURCE",
    "TARGET",
    "AmqpSourceConfig",
    "AmqpTargetConfig",
    "ReadFromAmqp",
    "WriteToAmqp",
    "event_to_message",
    "message_to_event",
    "safe_url",
]


def __getattr__(name: str) -> Any:
    if name == "WriteToAmqp":  # Apache Beam: imported on first use (the configs are light)
        from meshline.connectors.amqp.target import WriteToAmqp

        return WriteToAmqp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
