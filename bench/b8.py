"""B8 AMQP: RabbitMQ queue → file (the amqp source) and file → RabbitMQ (the amqp target).

Run alone: ``.venv/bin/python -m bench.b8 [--small N --large N --repeat R]``.
RabbitMQ runs in its own process (``tests/servers/rabbitmq.py`` provisions it from
Debian's packages into ``~/.cache/meshline/rabbitmq``, on 127.0.0.1); its CPU is not
in the numbers. Before each source run the queue is refilled with N structured
CloudEvents (~1 KiB, published by this process, outside the measured command);
the source reads them with ``max_events: N``. The target publishes persistent
messages with publisher confirms into a durable queue, emptied before each run.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.data import ensure_input
from bench.harness import OUT, Row, Scenario, canonical_json, jsonl_records, meshline_bin, standalone

__all__ = ["main", "scenario"]

_SERVERS = contextlib.ExitStack()
atexit.register(_SERVERS.close)
IN_QUEUE, OUT_QUEUE = "b8-in", "b8-out"


def _yaml(variant: str, n: int = 0) -> Path:
    path = OUT / f"b8-{variant}-{n}.yaml"
    if variant == "source":
        source = (
            '{name: events, type: amqp, config: {url: "${params.url}", queue: '
            + IN_QUEUE
            + f", max_events: {n}, batch: 500}}}}"
        )
        target = '{name: out, type: file, config: {path: "${params.output}"}}'
    else:
        source = '{name: events, type: file, config: {path: "${params.input}"}}'
        target = '{name: out, type: amqp, config: {url: "${params.url}", routing_key: ' + OUT_QUEUE + "}}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "\n".join(
            [
                "apiVersion: meshline.dev/v1alpha1",
                "kind: Integration",
                f"metadata: {{name: bench-b8-{variant}}}",
                "spec:",
                "  parameters:",
                "    - {name: url, required: true, secret: true}",
                "    - {name: input, default: unused}",
                "    - {name: output, default: unused}",
                f"  sources: [{source}]",
                f"  targets: [{target}]",
                "  triggers: [{name: all, target: out}]",
                "",
            ]
        )
    )
    return path


@contextlib.contextmanager
def _channel(url: str) -> Iterator[Any]:
    """A short-lived connection: one held across the other scenarios' runs idles out (heartbeat)."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield conn.channel()
    finally:
        if conn.is_open:
            conn.close()


def _fill(channel: Any, src: Path) -> None:
    import pika

    channel.queue_purge(IN_QUEUE)
    props = pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2)
    with src.open("rb") as fh:
        for line in fh:
            channel.basic_publish("", IN_QUEUE, line.rstrip(b"\n"), props)


def _queue_events(url: str, queue: str) -> list[bytes]:
    """Every message of ``queue`` (consumed) as the CloudEvent it carries, JSON with sorted keys."""

    from meshline.connectors.amqp.codec import message_to_event

    out: list[bytes] = []
    with _channel(url) as ch:
        ch.basic_qos(prefetch_count=1000)
        for method, props, body in ch.consume(queue, auto_ack=True, inactivity_timeout=2.0):
            if method is None:
                break
            event = message_to_event("amqp://bench", method, props, body)
            out.append(canonical_json(event.to_dict()))
        ch.cancel()
    return out


def scenario(small: int, large: int) -> Scenario | None:
    try:
        import pika  # noqa: F401 - checked here, used in _channel

        from tests.servers.rabbitmq import rabbitmq_server
    except ImportError as e:
        print(f"B8: not available ({e})", file=sys.stderr)
        return None
    try:
        broker = _SERVERS.enter_context(rabbitmq_server())
    except RuntimeError as e:
        print(f"B8: RabbitMQ cannot start here: {e}", file=sys.stderr)
        return None
    url = broker.url()
    with _channel(url) as ch:
        for q in (IN_QUEUE, OUT_QUEUE):
            ch.queue_declare(q, durable=True)

    def commands(n: int, dst: Path) -> dict[str, list[str]]:
        src = ensure_input(OUT / f"b1-{n}.jsonl", n)
        with _channel(url) as ch:
            if dst.name.endswith("amqp---file"):
                _fill(ch, src)  # outside the measured process
            if dst.name.endswith("file---amqp"):
                ch.queue_purge(OUT_QUEUE)
        base = [meshline_bin(), "run"]
        return {
            "amqp → file": [
                *base,
                str(_yaml("source", n)),
                "--runner",
                "direct",
                "--param",
                f"url={url}",
                "--param",
                f"output={dst}",
            ],
            "file → amqp": [
                *base,
                str(_yaml("target")),
                "--runner",
                "direct",
                "--param",
                f"url={url}",
                "--param",
                f"input={src}",
            ],
        }

    def records(dst: Path) -> list[bytes]:
        """The events each direction delivered: both carry the input's events, unchanged."""
        if dst.name.endswith("file---amqp"):
            return _queue_events(url, OUT_QUEUE)
        return jsonl_records(dst)

    return Scenario(
        name="B8",
        title="RabbitMQ → file (amqp source) and file → RabbitMQ (amqp target, confirms, persistent)",
        runner="direct (FnApiRunner), one worker; RabbitMQ 3.10 in its own process (CPU not counted)",
        commands=commands,
        records=records,
        small=small,
        large=large,
    )


def main(argv: list[str] | None = None) -> list[Row]:
    if argv is None:
        argv = sys.argv[1:]
    return standalone(__doc__, scenario, 5_000, 50_000, argv)


if __name__ == "__main__":
    main()
