"""``amqp`` source: a queue read through one consumer per worker process, acked after commit."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshline.config import Duration, doc
from meshline.connectors.amqp.codec import (
    MESSAGE_TYPE,
    check_url,
    describe,
    message_to_event,
    parameters,
    safe_url,
    source_uri,
)
from meshline.connectors.queues import Message
from meshline.errors import EventError
from meshline.events import CloudEvent
from meshline.registry import Component

if TYPE_CHECKING:
    from meshline.connectors.unbounded import ReadFromQueue

__all__ = ["SOURCE", "AmqpSourceConfig", "ReadFromAmqp"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class AmqpSourceConfig:
    """Read a RabbitMQ / AMQP 0-9-1 queue (at least once: acknowledged after the runner commits)."""

    url: str = doc("amqp://user:password@host:port/vhost", secret="url")
    queue: str = doc("the queue to read")
    exchange: str | None = doc("declare the queue and bind it to this (existing) exchange", None)
    routing_key: str = doc("binding key when 'exchange' is set ('#' matches all on a topic exchange)", "#")
    declare: bool = doc("declare the queue (durable) if it does not exist; implied by 'exchange'", False)
    prefetch: int = doc("unacknowledged messages the broker may send ahead (basic.qos)", 1000)
    max_events: int | None = doc("end the source after this many messages", None)
    idle_timeout: Duration | None = doc(
        "end the source after this long without a message, e.g. 30s (0: never)", None
    )
    batch: int = doc("messages per pull and per acknowledgement batch", 100)

    def __post_init__(self) -> None:
        check_url(self.url)
        if not self.queue:
            raise ValueError("queue: must not be empty")
        if self.max_events is not None and self.max_events < 0:
            raise ValueError(f"max_events: must be >= 0, got {self.max_events}")
        if not 1 <= self.batch <= 10000:
            raise ValueError(f"batch: must be between 1 and 10000, got {self.batch}")
        if not 1 <= self.prefetch <= 65535:
            raise ValueError(f"prefetch: must be between 1 and 65535, got {self.prefetch}")


class _AmqpReader:
    """One connection, one channel, one consumer; deliveries wait in a local buffer."""

    def __init__(self, config: AmqpSourceConfig):
        self._config = config
        self._source = source_uri(config.url, config.queue)
        self._lock = threading.Lock()
        self._gen = 0
        self._conn: Any = None
        self._ch: Any = None
        self._buffer: deque[tuple[Any, Any, bytes]] = deque()
        self._outstanding: set[int] = set()  # tags handed out, not yet acknowledged
        self._down = False
        self._connect()  # in setup(): a wrong url or a missing queue fails the run at once

    def _connect(self) -> None:
        import pika

        c = self._config
        self._gen += 1
        self._buffer.clear()
        self._outstanding.clear()
        try:
            self._conn = pika.BlockingConnection(parameters(c.url))
            ch = self._conn.channel()
            if c.exchange is not None or c.declare:
                ch.queue_declare(c.queue, durable=True)
            else:
                ch.queue_declare(c.queue, passive=True)  # fails clearly when the queue is missing
            if c.exchange is not None:
                ch.queue_bind(c.queue, c.exchange, routing_key=c.routing_key)
            ch.basic_qos(prefetch_count=c.prefetch)
            ch.basic_consume(c.queue, self._on_message, auto_ack=False)
        except pika.exceptions.AMQPError as e:
            self._close_quietly()
            raise ConnectionError(f"amqp source {safe_url(c.url)} queue {c.queue!r}: {describe(e)}") from None
        self._ch = ch

    def backlog(self) -> list[tuple[dict[str, str], float]]:
        """Messages ready in the queue, for ``meshline_source_backlog``: asked on a connection
        of its own (the consumer's channel belongs to the thread that reads)."""
        import pika

        c = self._config
        conn = pika.BlockingConnection(parameters(c.url))
        try:
            ok = conn.channel().queue_declare(c.queue, passive=True)
            return [({"kind": "amqp_ready", "queue": c.queue}, float(ok.method.message_count))]
        finally:
            conn.close()

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self._buffer.append((method, properties, body))

    def _alive(self) -> bool:
        return self._conn is not None and self._conn.is_open and self._ch is not None and self._ch.is_open

    def pull(self, max_messages: int, timeout: float) -> Sequence[Message]:
        import pika

        with self._lock:
            if not self._alive():
                self._close_quietly()
                try:
                    self._connect()
                except ConnectionError as e:  # the broker may be restarting: keep trying, quietly
                    if not self._down:
                        _LOGGER.warning("%s; retrying", e)
                    self._down = True
                    time.sleep(timeout)
                    return []
                if self._down:
                    _LOGGER.warning("amqp source %s: reconnected", self._source)
                self._down = False
            try:
                if not self._buffer:
                    self._conn.process_data_events(time_limit=timeout)
                if len(self._buffer) < max_messages:
                    self._conn.process_data_events(time_limit=0)
            except pika.exceptions.AMQPError as e:
                _LOGGER.warning("amqp source %s: connection lost (%s)", self._source, describe(e))
                self._close_quietly()  # the broker requeues what was not acknowledged
                return []
            out: list[Message] = []
            while self._buffer and len(out) < max_messages:
                method, props, body = self._buffer.popleft()
                tag = method.delivery_tag
                self._outstanding.add(tag)
                out.append(self._message(f"{self._gen}:{tag}", method, props, body))
            return out

    def _message(self, ack_id: str, method: Any, props: Any, body: bytes) -> Message:
        # Arrival time drives the watermark: the timestamp property is whatever a producer wrote
        # (it still becomes the event's `time`).
        ts = time.time()
        try:
            return Message(ack_id, message_to_event(self._source, method, props, body), ts)
        except (EventError, ValueError, TypeError) as e:
            raw = CloudEvent(
                {
                    "specversion": "1.0",
                    "id": str(props.message_id or f"{self._gen}-{method.delivery_tag}"),
                    "type": MESSAGE_TYPE,
                    "source": self._source,
                },
                bytes(body),
            )
            return Message(ack_id, raw, ts, error=str(e))

    def ack(self, ack_ids: Sequence[str]) -> None:
        import pika

        with self._lock:
            if not self._alive():
                return  # the broker requeued them with the old channel: they come again
            current = str(self._gen)
            tags: set[int] = set()
            for ack_id in ack_ids:
                gen, _, number = ack_id.partition(":")
                if gen == current and int(number) in self._outstanding:
                    tags.add(int(number))
            if not tags:
                return
            # multiple=True up to the highest tag below which every outstanding tag is in this ack
            upto = 0
            for tag in sorted(self._outstanding):
                if tag not in tags:
                    break
                upto = tag
            try:
                if upto:
                    self._ch.basic_ack(upto, multiple=True)
                for tag in sorted(t for t in tags if t > upto):
                    self._ch.basic_ack(tag)
            except pika.exceptions.AMQPError as e:
                _LOGGER.warning("amqp source %s: acknowledgement failed: %s", self._source, describe(e))
                self._close_quietly()
                return
            self._outstanding -= tags

    def _close_quietly(self) -> None:
        conn, self._conn, self._ch = self._conn, None, None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:  # already broken: the broker requeues unacknowledged messages anyway
                pass

    def close(self) -> None:
        with self._lock:
            self._close_quietly()


# One reader per worker process and source. A runner may run a source's bundles on
# several DoFn instances (Prism keeps one waiting for its bundle finalization while
# another reads on); with a consumer each, the first would hold every prefetched
# message in its buffer and the others would starve. Sharing the connection also
# lets any instance's finalizer acknowledge on the channel that received.
_SHARED: dict[tuple[Any, ...], list[Any]] = {}  # key -> [reader, users]
_SHARED_LOCK = threading.Lock()


class _ReaderHandle:
    def __init__(self, key: tuple[Any, ...], reader: _AmqpReader):
        self._key = key
        self._reader: _AmqpReader | None = reader

    def pull(self, max_messages: int, timeout: float) -> Sequence[Message]:
        assert self._reader is not None
        return self._reader.pull(max_messages, timeout)

    def ack(self, ack_ids: Sequence[str]) -> None:
        if self._reader is not None:
            self._reader.ack(ack_ids)

    def backlog(self) -> list[tuple[dict[str, str], float]]:
        return self._reader.backlog() if self._reader is not None else []

    def close(self) -> None:
        with _SHARED_LOCK:
            if self._reader is None:
                return
            self._reader = None
            entry = _SHARED.get(self._key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _SHARED[self._key]
        entry[0].close()  # unacknowledged messages go back to the queue


class _MakeReader:
    """Picklable factory: the connection is opened on the worker, in ``setup()``, once per process."""

    def __init__(self, config: AmqpSourceConfig, source_name: str):
        self._config = config
        self._name = source_name

    def __call__(self) -> _ReaderHandle:
        key = (self._name, self._config)
        with _SHARED_LOCK:
            entry = _SHARED.get(key)
            if entry is None:
                entry = _SHARED[key] = [_AmqpReader(self._config), 0]
            entry[1] += 1
            return _ReaderHandle(key, entry[0])


def ReadFromAmqp(config: AmqpSourceConfig, source_name: str = "amqp") -> ReadFromQueue:
    """``PBegin`` → ``(events, dead_letters)`` from an AMQP queue."""
    from meshline.connectors.unbounded import ReadFromQueue

    return ReadFromQueue(
        _MakeReader(config, source_name),
        source_name=source_name,
        max_events=config.max_events,
        idle_timeout=float(config.idle_timeout) if config.idle_timeout else None,  # 0s: never
        batch=config.batch,
    )


SOURCE = Component(
    id="amqp",
    kind="source",
    config=AmqpSourceConfig,
    build=lambda config, ctx: ReadFromAmqp(config, ctx.name),
    description="RabbitMQ / AMQP 0-9-1 queue; acknowledged after the runner commits (at least once).",
    unbounded=True,
)
