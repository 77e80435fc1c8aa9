"""Publishing to and draining a real broker with pika, for the amqp tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pika

from tests.harness import rows_in


class Rabbit:
    def __init__(self, url: str):
        self.url = url
        self._conn = pika.BlockingConnection(pika.URLParameters(url))
        self.ch = self._conn.channel()

    def close(self) -> None:
        self._conn.close()

    def new_queue(self, prefix: str = "q") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.ch.queue_declare(name, durable=True)
        return name

    def publish(
        self, queue: str, messages: Iterable[tuple[bytes, dict[str, Any]]], exchange: str = ""
    ) -> None:
        for body, props in messages:
            self.ch.basic_publish(exchange, queue, body, pika.BasicProperties(**props))

    def depth(self, queue: str, timeout: float = 15.0) -> int:
        """Messages waiting in ``queue`` once no consumer is attached any more: a dead client's
        unacknowledged messages are requeued when the broker drops its consumer."""
        deadline = time.monotonic() + timeout
        while True:
            ok = self.ch.queue_declare(queue, passive=True).method
            if ok.consumer_count == 0 or time.monotonic() > deadline:
                return int(ok.message_count)
            time.sleep(0.1)

    def drain(self, queue: str) -> list[tuple[Any, bytes]]:
        out = []
        while True:
            method, props, body = self.ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((props, body))


def events_in(directory: Path) -> list[dict[str, Any]]:
    return rows_in(directory)
