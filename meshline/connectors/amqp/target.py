"""``amqp`` target: publish to an exchange with pipelined publisher confirms.

A bundle's events are published in batches of ``batch`` messages without waiting,
then the batch's confirms are awaited (RabbitMQ confirms persistent messages after
writing them to disk, so waiting per message would cost a disk flush each). A
message the broker nacks, or a batch cut short by a lost connection, is retried
per the trigger's ``delivery``; a message returned as unroutable (``mandatory``)
and every message of a channel the broker closed with 403/404/406 (no permission,
no such exchange, precondition failed) are dead-lettered at once with the reason.
Everything is confirmed (or dead-lettered) before ``finish_bundle`` returns, so an
acknowledging source acknowledges only delivered messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.connectors.amqp.codec import (
    describe,
    event_to_message,
    parameters,
    render_key,
    safe_url,
)
from meshline.connectors.amqp.target_config import TARGET, AmqpTargetConfig
from meshline.connectors.delivery import Failure, PermanentError, RetryPolicy, deliver_batch, reason
from meshline.errors import EventError
from meshline.events import CloudEvent, dead_letter
from meshline.registry import BuildContext

__all__ = ["TARGET", "AmqpTargetConfig", "WriteToAmqp"]

_LOGGER = logging.getLogger(__name__)
_FATAL_CLOSE = (403, 404, 406)  # access refused, not found, precondition failed: retrying cannot help


@dataclass
class _Outgoing:
    event: CloudEvent
    key: str
    properties: Any
    body: bytes
    timestamp: Any = None
    window: Any = None


class _Publisher:
    """One connection and confirming channel (pika's channel used asynchronously), reopened after failures."""

    def __init__(self, config: AmqpTargetConfig):
        self._config = config
        self._conn: Any = None
        self._ch: Any = None  # pika.channel.Channel (the asynchronous one under the blocking wrapper)
        self._closed: BaseException | None = None
        self._next = 1
        self._pending: dict[int, _Outgoing] = {}
        self._returned: dict[int, str] = {}
        self._results: dict[int, Failure | None] = {}

    def _open(self) -> None:
        import pika

        self.close()
        try:
            self._conn = pika.BlockingConnection(parameters(self._config.url))
            blocking = self._conn.channel()
        except (pika.exceptions.AMQPError, OSError) as e:
            self.close()
            raise ConnectionError(f"cannot connect to {safe_url(self._config.url)}: {describe(e)}") from None
        ch = blocking._impl
        ready: list[bool] = []
        ch.confirm_delivery(ack_nack_callback=self._on_confirm, callback=lambda _frame: ready.append(True))
        ch.add_on_return_callback(self._on_return)
        ch.add_on_close_callback(self._on_close)
        self._ch, self._closed, self._next = ch, None, 1
        self._pending, self._returned, self._results = {}, {}, {}
        self._wait(lambda: bool(ready), "confirm mode")

    def _wait(self, done: Any, what: str) -> None:
        deadline = time.monotonic() + float(self._config.confirm_timeout)
        while not done():
            if self._closed is not None:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer from the broker for {what} in {self._config.confirm_timeout}s")
            self._conn.process_data_events(time_limit=0.2)

    def _on_confirm(self, frame: Any) -> None:
        import pika

        method = frame.method
        tags = (
            [t for t in self._pending if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        nack = isinstance(method, pika.spec.Basic.Nack)
        for tag in tags:
            if self._pending.pop(tag, None) is None:
                continue
            if nack:
                self._results[tag] = Failure(tag, "the broker refused the message (basic.nack)", True)
            elif tag in self._returned:
                self._results[tag] = Failure(tag, self._returned.pop(tag), False)
            else:
                self._results[tag] = None

    def _on_return(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        # A return comes just before the confirm of the same message: match the oldest pending one.
        for tag, out in self._pending.items():
            if tag not in self._returned and out.key == method.routing_key and out.body == body:
                self._returned[tag] = (
                    f"unroutable: {method.reply_code} {method.reply_text}: no queue bound to exchange "
                    f"{method.exchange!r} for routing key {method.routing_key!r}"
                )
                return

    def _on_close(self, channel: Any, error: BaseException) -> None:
        self._closed = error

    def send(self, items: Sequence[_Outgoing]) -> list[Failure]:
        """Publish ``items`` and wait for their confirms; the failures (for :func:`deliver_batch`)."""
        import pika

        c = self._config
        try:
            if self._ch is None or not self._ch.is_open or self._closed is not None:
                self._open()
            tags = []
            for out in items:
                self._ch.basic_publish(c.exchange, out.key, out.body, out.properties, mandatory=c.mandatory)
                tags.append(self._next)
                self._pending[self._next] = out
                self._next += 1
            self._wait(lambda: not any(t in self._pending for t in tags), f"{len(items)} confirms")
        except (pika.exceptions.AMQPError, OSError, TimeoutError) as e:
            self.close()
            raise ConnectionError(f"publish failed: {describe(e)}") from None
        failures = []
        closed = self._closed
        for tag, out in zip(tags, items, strict=True):
            if tag in self._pending:  # never confirmed: the channel or connection went away
                self._pending.pop(tag)
                code = getattr(closed, "reply_code", None)
                text = f"{code} {getattr(closed, 'reply_text', '')}" if code else reason(closed or EOFError())
                failures.append(Failure(out, f"channel closed: {text}", code not in _FATAL_CLOSE))
                continue
            result = self._results.pop(tag, None)
            if result is not None:
                failures.append(Failure(out, result.reason, result.transient))
        if closed is not None:
            self.close()
        return failures

    def close(self) -> None:
        conn, self._conn, self._ch = self._conn, None, None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:  # already broken
                pass


class _PublishFn(beam.DoFn):
    def __init__(self, config: AmqpTargetConfig, policy: RetryPolicy, target: str):
        self._config = config
        self._policy = policy
        self._delivered = beam.metrics.Metrics.counter("meshline", f"target.{target}.delivered")
        self._retried = beam.metrics.Metrics.counter("meshline", f"target.{target}.retried")

    def setup(self):
        import pika

        self._props = pika.BasicProperties
        self._publisher = _Publisher(self._config)

    def teardown(self):
        publisher = getattr(self, "_publisher", None)
        if publisher is not None:
            publisher.close()

    def start_bundle(self):
        self._batch: list[_Outgoing] = []

    def process(self, event: CloudEvent, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        c = self._config
        try:
            key = render_key(c.routing_key, event)
            props, body = event_to_message(event, c.mode, c.header_prefix)
        except (EventError, PermanentError, TypeError, ValueError) as e:
            yield WindowedValue(
                dead_letter(
                    event, str(e) if isinstance(e, (EventError, PermanentError)) else reason(e), "deliver"
                ),
                timestamp,
                (window,),
            )
            return
        if c.persistent:
            props["delivery_mode"] = 2
        self._batch.append(_Outgoing(event, key, self._props(**props), body, timestamp, window))
        if len(self._batch) >= c.batch:
            yield from self._flush()

    def finish_bundle(self):
        yield from self._flush()

    def _flush(self):
        items, self._batch = self._batch, []
        if not items:
            return
        failed = deliver_batch(
            items,
            self._publisher.send,
            self._policy,
            is_transient=lambda e: isinstance(e, ConnectionError),
            on_retry=self._retried.inc,
        )
        self._delivered.inc(len(items) - len(failed))
        for out, why in failed:
            yield WindowedValue(dead_letter(out.event, why, "deliver"), out.timestamp, (out.window,))


class WriteToAmqp(beam.PTransform):
    """Events → dead letters (stage ``deliver``) of the events the broker finally refused."""

    def __init__(
        self, config: AmqpTargetConfig, *, target_name: str = "amqp", policy: RetryPolicy | None = None
    ):
        super().__init__()
        self._fn = _PublishFn(config, policy or RetryPolicy(), target_name)

    def expand(self, events):
        return events | "Publish" >> beam.ParDo(self._fn).with_output_types(CloudEvent)


def build(config: AmqpTargetConfig, ctx: BuildContext) -> WriteToAmqp:
    """The target's transform (:data:`TARGET` names it)."""
    return WriteToAmqp(config, target_name=ctx.name, policy=ctx.delivery)
