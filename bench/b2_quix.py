"""B2's Quix Streams baseline: the "python loop" variant's work as a Quix Streams application.

Run by bench/b2.py with the python of its own virtualenv (``~/.cache/meshline/quix/venv``,
quixstreams pinned there; its pins collide with the project's), as
``b2_quix.py BOOTSTRAP TOPIC N GROUP OUT``. Standalone on purpose: it imports quixstreams,
orjson (when that venv has it) and the standard library only, never meshline or apache_beam.

Same work as ``bench.b2.loop(..., use_jq=False)``: read TOPIC from the beginning with a fresh
consumer group, parse each JSON value, keep ``amount > 100``, add ``total`` and ``status``,
write the result to OUT with the same key and the same ce_* headers (CloudEvents Kafka binding,
binary mode), and stop once N input records were processed; stopping commits the offsets.

Quix settings, as a Quix user tuning for throughput would pick them:

- ``auto_offset_reset="earliest"`` and the fresh consumer group b2.py passes per run;
- ``commit_interval`` left at its default (5 s; ``commit_every`` off): a checkpoint flushes
  the producer and commits offsets, and the final one on ``app.stop()`` does both once more;
- ``processing_guarantee="at-least-once"`` (the default; the loop baseline does not use
  transactions either);
- the producer configured as the loop baseline's: idempotent, ``acks=all``, ``linger.ms=20``,
  ``batch.size=1000000``, lz4 (Quix's own default is librdkafka's: no compression, 5 ms linger);
- orjson for JSON in and out (Quix's default JSON (de)serializers use orjson too);
- no state, no changelog topics (a stateless pipeline); ``loglevel="WARNING"``.

Quix subscribes to TOPIC (consumer-group assignment) where the loop assigns partitions; the
test broker sets ``group.initial.rebalance.delay.ms=0``, so that costs little time.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
import tempfile
from typing import Any

from quixstreams import Application, message_context  # type: ignore[import-not-found]
from quixstreams.models.serializers import (  # type: ignore[import-not-found]
    JSONDeserializer,
    JSONSerializer,
)

try:
    import orjson as json_codec
except ImportError:  # Quix's defaults (orjson as well, since quixstreams depends on it)
    from quixstreams.utils import json as json_codec  # type: ignore[import-not-found, no-redef]

TYPE = "dev.meshline.kafka.message"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@functools.lru_cache(maxsize=4096)
def record_time(millis: int) -> str:
    """RFC 3339 (UTC, milliseconds) of a Kafka record timestamp (as meshline's kafka source)."""
    t = _EPOCH + dt.timedelta(milliseconds=millis)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def big(data: dict) -> bool:
    return data["amount"] > 100


def price(data: dict) -> None:
    data["total"] = data["amount"] * data["quantity"]
    data["status"] = "big"


def run(bootstrap: str, topic: str, n: int, group: str, out: str) -> None:
    source = f"kafka://{bootstrap}/{topic}".encode()
    ce_type = TYPE.encode()
    seen = 0

    def processed(_topic: str, _partition: int, _offset: int) -> None:
        # the loop's "while seen < n": every input record counts, kept or filtered out
        nonlocal seen
        seen += 1
        if seen >= n:
            app.stop()

    def headers(_value: Any, key: bytes, timestamp: int, _headers: Any) -> list[tuple[str, bytes]]:
        ctx = message_context()
        return [
            ("ce_specversion", b"1.0"),
            ("ce_id", f"{topic}-{ctx.partition}-{ctx.offset}".encode()),
            ("ce_source", source),
            ("ce_type", ce_type),
            ("ce_time", record_time(timestamp).encode()),
            ("ce_partitionkey", key),
            ("content-type", b"application/json"),
        ]

    with tempfile.TemporaryDirectory(prefix="b2-quix-state-") as state:
        app = Application(
            broker_address=bootstrap,
            consumer_group=group,
            auto_offset_reset="earliest",
            processing_guarantee="at-least-once",
            producer_extra_config={
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "batch.size": 1_000_000,
                "compression.type": "lz4",
            },
            state_dir=state,  # unused (stateless), but never ./state in the repository
            use_changelog_topics=False,
            on_message_processed=processed,
            loglevel="WARNING",
        )
        loads, dumps = JSONDeserializer(loads=json_codec.loads), JSONSerializer(dumps=json_codec.dumps)
        src = app.topic(topic, key_deserializer="bytes", value_deserializer=loads)
        dst = app.topic(out, key_serializer="bytes", value_serializer=dumps)
        sdf = app.dataframe(src)
        sdf = sdf.filter(big).update(price).set_headers(headers)
        sdf.to_topic(dst)
        app.run()
    if seen < n:
        raise SystemExit(f"stopped after {seen:,} of {n:,} records")


def main(argv: list[str]) -> None:
    bootstrap, topic, n, group, out = argv[:5]
    run(bootstrap, topic, int(n), group, out)


if __name__ == "__main__":
    main(sys.argv[1:])
