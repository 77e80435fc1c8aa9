"""Kafka test helpers: topics, bulk produce, drain, committed and end offsets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

_COORDINATOR_BUSY = (
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError._TIMED_OUT,
)
Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]  # key, value, headers


def new_topic(bootstrap: str, partitions: int = 3, prefix: str = "t") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name]
    fut.result(30)
    return name


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[Record],
    partition: int | None = None,
    timestamp: int | None = None,
    **extra: Any,
) -> int:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000, **extra})
    errors: list[Any] = []
    n = 0
    for key, value, headers in records:
        kw: dict[str, Any] = {"on_delivery": lambda e, m: e is not None and errors.append(e)}
        if partition is not None:
            kw["partition"] = partition
        if timestamp is not None:
            kw["timestamp"] = timestamp
        while True:
            try:
                p.produce(topic, value, key, headers=headers, **kw)
                break
            except BufferError:
                p.poll(0.1)
        n += 1
    assert p.flush(60) == 0
    assert not errors, errors[:3]
    return n


def partitions(bootstrap: str, topic: str) -> list[int]:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic=topic, timeout=10)
    return sorted(md.topics[topic].partitions)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "meshline-test-probe"})
    try:
        tps = [TopicPartition(topic, p) for p in partitions(bootstrap, topic)]
        return {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    finally:
        c.close()


def committed(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        for attempt in range(50):
            try:
                asked = [TopicPartition(topic, p) for p in partitions(bootstrap, topic)]
                tps = c.committed(asked, timeout=10)
                return {tp.partition: tp.offset for tp in tps}
            except KafkaException as e:  # the group coordinator may still be loading
                if attempt == 49 or e.args[0].code() not in _COORDINATOR_BUSY:
                    raise
                time.sleep(0.3)
        raise AssertionError("unreachable")
    finally:
        c.close()


def drain(bootstrap: str, topic: str, expect: int | None = None, wait: float = 3.0) -> list[Any]:
    """Every record of ``topic`` from the beginning (confluent Message objects)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"drain-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        c.assign([TopicPartition(topic, p, 0) for p in partitions(bootstrap, topic)])
        out: list[Any] = []
        last = time.monotonic()
        while time.monotonic() - last < wait:
            batch = c.consume(num_messages=10_000, timeout=0.5)
            for m in batch:
                if m.error() is not None:
                    raise KafkaException(m.error())
                out.append(m)
            if batch:
                last = time.monotonic()
            if expect is not None and len(out) >= expect:
                # one more short poll to catch surplus (duplicates) without waiting long
                wait = 0.6
        return out
    finally:
        c.close()


def fully_committed(bootstrap: str, topic: str, group: str) -> dict[int, tuple[int, int]]:
    """Partitions whose committed offset is not their end offset: {partition: (committed, end)}.

    An empty partition (end offset 0) has nothing to commit and counts as done.
    """
    ends = end_offsets(bootstrap, topic)
    done = committed(bootstrap, topic, group)
    return {p: (done.get(p, -1), e) for p, e in ends.items() if e > 0 and done.get(p, -1) != e}
