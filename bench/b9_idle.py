"""B9 idle CPU: an integration whose only source is idle, per runner and source kind.

Run alone: ``.venv/bin/python -m bench.b9_idle [--runners prism flink] [--sources webhook kafka sqs
pubsub amqp] [--seconds 60]``; ``make bench`` runs it with B9.

Each measurement is one ``meshline run`` of SOURCE → ``http`` target (a receiver on
127.0.0.1). One probe event goes through the source first (so the run is up, and its
start-up is over), then 5 s to settle, then the CPU-seconds of every process of the run —
the CLI and everything below it: Prism or the Flink JVM, SDK workers — are read from
``/proc/PID/stat`` (utime + stime) at the start and end of the window. Idle CPU =
their difference / window, as % of one core. The servers (Kafka, moto, the Pub/Sub
emulator, RabbitMQ) are their own processes and not counted.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from bench.b9 import _SERVERS, B9Failure, _free_port, kafka_broker, meshline_run, receiver
from bench.harness import OUT
from bench.latency import cpu_seconds, loadavg, name, tree

__all__ = ["SOURCES", "measure_idle"]

SOURCES = ("webhook", "kafka", "sqs", "pubsub", "amqp")
SETTLE = 5.0
_HEAD = """apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: bench-idle-{kind}}}
spec:
  sources:
    - {{name: idle, type: {type}, config: {config}}}
  targets:
    - {{name: out, type: http, config: {{url: "{url}"}}}}
  triggers:
    - {{name: all, target: out}}
"""
_started: dict[str, Any] = {}


def _server(kind: str) -> Any:
    """The server a source kind reads from, started once for this process."""
    if kind not in _started:
        if kind == "kafka":
            _started[kind] = kafka_broker()
        elif kind == "sqs":
            from tests.servers.moto import moto_server

            _started[kind] = _SERVERS.enter_context(moto_server())
        elif kind == "pubsub":
            from tests.servers.pubsub import pubsub_emulator

            _started[kind] = _SERVERS.enter_context(pubsub_emulator())
        elif kind == "amqp":
            from tests.servers.rabbitmq import rabbitmq_server

            _started[kind] = _SERVERS.enter_context(rabbitmq_server()).url()
    return _started[kind]


def _source(kind: str) -> tuple[str, str, dict[str, str], Callable[[], None]]:
    """(type, config as YAML flow, environment, send-one-probe) of a fresh source of ``kind``."""
    tag = uuid.uuid4().hex[:8]
    if kind == "webhook":
        port = _free_port()

        def post() -> None:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/",
                data=b'{"probe": true}',
                headers={"content-type": "application/json"},
            )
            try:
                urllib.request.urlopen(req, timeout=120).close()
            except OSError:  # not listening yet: the probe loop tries again
                pass

        return "http", f"{{port: {port}}}", {}, post
    server = _server(kind)
    if kind == "kafka":
        from confluent_kafka import Producer
        from confluent_kafka.admin import NewTopic

        from bench.b9 import _admin

        topic = f"idle-{tag}"
        _admin(server).create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        producer = Producer({"bootstrap.servers": server})

        def produce() -> None:
            producer.produce(topic, b'{"probe": true}')
            producer.flush(10)

        return "kafka", f'{{bootstrap_servers: "{server}", topics: {topic}}}', {}, produce
    if kind == "sqs":
        import boto3

        from tests.servers.moto import REGION, aws_env

        env = aws_env(server)
        sqs = boto3.client(
            "sqs",
            endpoint_url=server,
            region_name=REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        url = sqs.create_queue(QueueName=f"idle-{tag}")["QueueUrl"]
        config = f'{{queue_url: "{url}", endpoint_url: "{server}"}}'

        def send_one() -> None:
            sqs.send_message(QueueUrl=url, MessageBody='{"probe": true}')

        return "aws.sqs", config, env, send_one
    if kind == "pubsub":
        from tests.integration.pubsub_support import PROJECT, PubSub

        ps = PubSub(server)
        topic, sub = ps.new_subscription()
        config = f'{{project: {PROJECT}, subscription: {sub}, endpoint_url: "{server}"}}'

        def publish_one() -> None:
            ps.publish(topic, [(b'{"probe": true}', {})])

        return "google.pubsub", config, {}, publish_one
    if kind == "amqp":
        import pika

        queue = f"idle-{tag}"

        def publish() -> None:
            conn = pika.BlockingConnection(pika.URLParameters(server))
            try:
                ch = conn.channel()
                ch.queue_declare(queue, durable=True)
                ch.basic_publish("", queue, b'{"probe": true}')
            finally:
                conn.close()

        return "amqp", f'{{url: "{server}", queue: {queue}, declare: true}}', {}, publish
    raise ValueError(f"source kind: one of {', '.join(SOURCES)}, got {kind!r}")


def measure_idle(runner: str, source: str, seconds: float = 60.0) -> float:
    """CPU of one idle run (``source`` → http target on ``runner``) over ``seconds``, % of one core."""
    folder = OUT / "b9-idle"
    type_, config, env, probe = _source(source)
    with receiver(folder) as (url, arrivals):
        spec = folder / f"idle-{source}-{runner}.yaml"
        spec.write_text(_HEAD.format(kind=source, type=type_, config=config, url=url))
        log = folder / f"idle-{source}-{runner}.log"
        with meshline_run(spec, runner, log, env) as proc:
            deadline = time.monotonic() + 240
            sent = 0.0
            while not arrivals.read():
                if proc.poll() is not None:
                    raise B9Failure(f"idle {source} on {runner}: meshline run exited with {proc.returncode}")
                if time.monotonic() > deadline:
                    raise B9Failure(f"idle {source} on {runner}: the probe never arrived")
                if (source in ("webhook", "amqp") and time.monotonic() - sent > 5) or not sent:
                    probe()  # the webhook's first posts may hit a closed port; AMQP's queue may not exist yet
                    sent = time.monotonic()
                time.sleep(0.2)
            time.sleep(SETTLE)
            before = cpu_seconds(tree(proc.pid))
            t0 = time.monotonic()
            time.sleep(seconds)
            pids = tree(proc.pid)
            after = cpu_seconds(pids)
            names = {p: name(p) for p in pids}
            window = time.monotonic() - t0
    used = {p: after[p] - before.get(p, 0.0) for p in after}
    top = sorted(used.items(), key=lambda kv: -kv[1])[:4]
    print(
        f"  idle {source} on {runner}: {100 * sum(used.values()) / window:.1f}% of a core over {window:.0f}s "
        f"({len(pids)} processes; " + ", ".join(f"{names.get(p, p)} {c:.2f}s" for p, c in top) + ")",
        file=sys.stderr,
    )
    return 100 * sum(used.values()) / window


def run(
    runners: list[str], sources: list[str], seconds: float
) -> tuple[list[tuple[str, str, float, str]], list[str]]:
    """(runner, source, % of a core, load average) per measurement, and a line per failure."""
    measure = measure_idle
    try:  # the idle-CPU work of the same issue may bring its own measurement: it wins
        from bench.idle import measure_idle as measure  # type: ignore[no-redef]
    except ImportError:
        pass
    rows, failures = [], []
    for source in sources:
        for runner in runners:
            try:
                rows.append((runner, source, measure(runner, source, seconds), loadavg()))
            except (B9Failure, RuntimeError, OSError) as e:
                failures.append(f"idle {source} on {runner}: {e}")
                print(f"  FAILED: {e}", file=sys.stderr)
    return rows, failures


def idle_markdown(rows: list[tuple[str, str, float, str]], seconds: float) -> str:
    lines = [
        f"| source | runner | CPU over {seconds:.0f} s, % of one core | load average |",
        "|---|---|---:|---|",
    ]
    lines += [f"| {source} | {runner} | {pct:.1f} | {load} |" for runner, source, pct, load in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runners", nargs="*", default=["prism", "flink"])
    ap.add_argument("--sources", nargs="*", default=list(SOURCES), choices=SOURCES)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    rows, failures = run(args.runners, args.sources, args.seconds)
    print(idle_markdown(rows, args.seconds))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
