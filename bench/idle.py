"""Idle cost: CPU of a streaming run whose only source receives nothing, and its first event after.

``python -m bench.idle --runner prism --source webhook --seconds 60`` (or ``--source all``,
``--runner all``) starts the source's test server (tests/servers/: managed Kafka, moto for
SQS, the Pub/Sub emulator, RabbitMQ for AMQP; the webhook needs none), writes an integration
``source → log target``, and runs ``meshline run`` on it. Once one event has come through
(the run is up) and a settling pause has passed, it measures the CPU-seconds the run's
processes consume over the window — the CLI (which also runs the SDK workers, loopback),
Prism or the Flink job-server JVM, and any other descendant, from ``/proc/PID/stat``
(utime + stime, plus what reaped children left in cutime + cstime) — and prints them as %
of one core. The servers' own CPU is not counted. Then it sends one event and reports how
long it took to come out of the log target (and, for the webhook, until its 202): the
latency of the first event after the idle window.

:func:`measure_idle` is the entry point for other benchmarks (B9): ``measure_idle(runner,
source, seconds) -> float`` (% of one core); :func:`run_idle` returns the whole
:class:`Idle` record.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import ROOT, meshline_bin

__all__ = ["RUNNERS", "SOURCES", "Idle", "main", "measure_idle", "run_idle"]

SOURCES = ("webhook", "kafka", "sqs", "pubsub", "amqp")
RUNNERS = ("prism", "flink")
SETTLE_S = 20.0  # after the first event: start-up work done, the source's idle waits grown
UP_TIMEOUT_S = 300.0  # the first event through (Flink's first start builds its job server)
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Idle:
    runner: str
    source: str
    seconds: float  # the measured window
    cpu_seconds: float  # consumed by the run's processes in the window
    percent: float  # of one core
    by_process: dict[str, float]  # CPU-seconds in the window per command name (meshline, prism, java)
    first_event_s: float  # an event sent after the window: until the log target printed it
    first_ack_s: float | None  # the webhook's 202 for it (None for queue sources)
    loadavg: str  # /proc/loadavg after the window
    threads: dict[str, float] = field(default_factory=dict)  # with threads=True: CPU-s per "process/thread"


# --------------------------------------------------------------------------- CPU of a process tree


def _stat(pid: int) -> tuple[int, str, float] | None:
    """(parent pid, command name, CPU ticks of ``pid`` and of its reaped children); None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()  # the command may contain spaces and parens
    # fields[0] is field 3 (state): ppid = field 4, utime..cstime = fields 14..17
    return int(fields[1]), name, float(sum(int(f) for f in fields[11:15]))


def tree_cpu(root: int) -> dict[str, float]:
    """CPU-seconds consumed so far by ``root`` and all its descendants, per command name."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            s = _stat(int(entry))
            if s is not None:
                stats[int(entry)] = s
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, _) in stats.items():
            if ppid == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    out: dict[str, float] = {}
    for pid in members & stats.keys():
        _, name, ticks = stats[pid]
        out[name] = out.get(name, 0.0) + ticks / _TICKS
    return out


def tree_threads(root: int) -> dict[str, float]:
    """CPU-seconds so far of every thread of ``root``'s process tree, per "process/thread" name
    (digits in thread names folded to #: Flink's and the JVM's pools number their threads)."""
    from bench.latency import tree

    out: dict[str, float] = {}
    for pid in tree(root):
        proc = _stat(pid)
        if proc is None:
            continue
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
                text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            key = f"{proc[1]}/{re.sub(r'[0-9]+', '#', name)}"
            out[key] = out.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / _TICKS
    return out


# --------------------------------------------------------------------------- sources


@dataclass
class _Source:
    """A source's config for the integration, how to send it one event, the run's environment."""

    config: dict[str, Any]
    send: Callable[[str], float | None]  # event id → seconds until acknowledged (webhook), else None
    env: dict[str, str]


def _event(event_id: str) -> bytes:
    return json.dumps(
        {"specversion": "1.0", "id": event_id, "source": "bench/idle", "type": "bench.idle", "data": {}}
    ).encode()


@contextlib.contextmanager
def _webhook() -> Iterator[_Source]:
    from tests.harness import free_port

    port = free_port()

    def send(event_id: str) -> float:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/events",
            data=_event(event_id),
            headers={"content-type": "application/cloudevents+json"},
        )
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=120) as response:
            if response.status != 202:
                raise RuntimeError(f"webhook answered {response.status}")
        return time.monotonic() - started

    yield _Source({"type": "http", "config": {"port": port, "path": "/events"}}, send, {})


@contextlib.contextmanager
def _kafka() -> Iterator[_Source]:
    from confluent_kafka import Producer

    from tests.integration.kafka.support import new_topic
    from tests.servers.kafka import kafka_broker

    with kafka_broker() as broker:
        topic = new_topic(broker.bootstrap, partitions=3, prefix="idle")

        def send(event_id: str) -> None:
            p = Producer({"bootstrap.servers": broker.bootstrap})
            p.produce(topic, _event(event_id), headers=[("content-type", b"application/cloudevents+json")])
            p.flush(30)

        config = {"bootstrap_servers": broker.bootstrap, "topics": topic, "group_id": f"idle-{topic}"}
        yield _Source({"type": "kafka", "config": config}, send, {})


@contextlib.contextmanager
def _sqs() -> Iterator[_Source]:
    import boto3

    from tests.servers.moto import REGION, aws_env, moto_server

    with moto_server() as endpoint:
        env = aws_env(endpoint)
        with _environ(env):
            sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
            url = sqs.create_queue(QueueName=f"idle-{uuid.uuid4().hex[:8]}")["QueueUrl"]

        def send(event_id: str) -> None:
            with _environ(env):
                sqs.send_message(QueueUrl=url, MessageBody=_event(event_id).decode())

        config = {"queue_url": url, "endpoint_url": endpoint, "region": REGION}
        yield _Source({"type": "aws.sqs", "config": config}, send, env)


@contextlib.contextmanager
def _pubsub() -> Iterator[_Source]:
    from tests.integration.pubsub_support import PROJECT, PubSub
    from tests.servers.pubsub import pubsub_emulator

    with pubsub_emulator() as host:
        admin = PubSub(host)
        topic, subscription = admin.new_subscription()

        def send(event_id: str) -> None:
            admin.publish(topic, [(_event(event_id), {"content-type": "application/cloudevents+json"})])

        config = {"project": PROJECT, "subscription": subscription, "endpoint_url": host}
        yield _Source({"type": "google.pubsub", "config": config}, send, {})


@contextlib.contextmanager
def _amqp() -> Iterator[_Source]:
    import pika

    from tests.servers.rabbitmq import rabbitmq_server

    with rabbitmq_server() as broker:
        url, name = broker.url(), f"idle-{uuid.uuid4().hex[:8]}"

        def send(event_id: str) -> None:
            conn = pika.BlockingConnection(pika.URLParameters(url))  # one held open would idle out
            try:
                props = pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2)
                conn.channel().basic_publish("", name, _event(event_id), props)
            finally:
                conn.close()

        config = {"url": url, "queue": name, "declare": True}
        yield _Source({"type": "amqp", "config": config}, send, {})


_SERVERS: dict[str, Callable[[], contextlib.AbstractContextManager[_Source]]] = {
    "webhook": _webhook,
    "kafka": _kafka,
    "sqs": _sqs,
    "pubsub": _pubsub,
    "amqp": _amqp,
}


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------- the run


class _Printed:
    """The run's stdout, read on a thread: the ids of the events the log target printed, and when."""

    def __init__(self, stream: Any):
        self.seen: queue.Queue[tuple[str, float]] = queue.Queue()
        self.tail: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            now = time.monotonic()
            self.tail = [*self.tail[-20:], line]
            with contextlib.suppress(ValueError, AttributeError):
                self.seen.put((json.loads(line)["id"], now))

    def wait_for(self, event_id: str, proc: subprocess.Popen[str], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while True:
            try:
                got, at = self.seen.get(timeout=0.5)
                if got == event_id:
                    return at
            except queue.Empty:
                if proc.poll() is not None:
                    raise RuntimeError(f"the run ended ({proc.returncode}):\n{''.join(self.tail)}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"event {event_id} not delivered within {timeout:.0f}s") from None


def _integration(
    path: Path, source: dict[str, Any], runner: str, execution: dict[str, Any] | None = None
) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "meshline.dev/v1alpha1",
        "kind": "Integration",
        "metadata": {"name": f"idle-{runner}"},
        "spec": {
            "sources": [{"name": "idle", **source}],
            "targets": [{"name": "out", "type": "log"}, {"name": "dead", "type": "log"}],
            "triggers": [{"name": "all", "target": "out"}],
            "deadLetter": "dead",
        },
    }
    if execution:
        doc["spec"]["execution"] = execution
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def _runner_args(runner: str) -> list[str]:
    if runner == "flink":
        return ["--runner", "flink", "--flink-master", "[local]"]
    return ["--runner", runner]


def run_idle(
    runner: str,
    source: str,
    seconds: float = 60.0,
    settle: float = SETTLE_S,
    *,
    execution: dict[str, Any] | None = None,
    threads: bool = False,
) -> Idle:
    """Start ``source``'s server and a run on ``runner``; measure it idle for ``seconds``.

    ``execution``: the integration's ``spec.execution``; ``threads``: also the CPU per thread."""
    if source not in _SERVERS:
        raise ValueError(f"source: one of {', '.join(SOURCES)}, not {source!r}")
    if runner not in RUNNERS:
        raise ValueError(f"runner: one of {', '.join(RUNNERS)}, not {runner!r}")
    with _SERVERS[source]() as src, tempfile.TemporaryDirectory(prefix="meshline-idle-") as tmp:
        path = _integration(Path(tmp) / "idle.yaml", src.config, runner, execution)
        env = dict(os.environ, **src.env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        err = open(Path(tmp) / "stderr.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [meshline_bin(), "run", str(path), *_runner_args(runner)],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
        try:
            printed = _Printed(proc.stdout)
            _send_until_printed(src, printed, proc, f"warm-{uuid.uuid4().hex[:8]}", UP_TIMEOUT_S)
            time.sleep(settle)
            before = tree_cpu(proc.pid)
            threads_before = tree_threads(proc.pid) if threads else {}
            started = time.monotonic()
            time.sleep(seconds)
            after = tree_cpu(proc.pid)
            threads_after = tree_threads(proc.pid) if threads else {}
            window = time.monotonic() - started
            loadavg = Path("/proc/loadavg").read_text().strip()
            event_id = f"first-{uuid.uuid4().hex[:8]}"
            sent = time.monotonic()
            ack = src.send(event_id)
            delivered = printed.wait_for(event_id, proc, 120) - sent
        except RuntimeError as e:
            err.flush()
            raise RuntimeError(f"{e}\n{(Path(tmp) / 'stderr.log').read_text()[-3000:]}") from None
        finally:
            _stop(proc)
            err.close()
    by_process = {name: round(t - before.get(name, 0.0), 3) for name, t in after.items()}
    cpu = sum(by_process.values())
    by_thread = {k: round(v - threads_before.get(k, 0.0), 2) for k, v in threads_after.items()}
    by_thread = dict(sorted(((k, v) for k, v in by_thread.items() if v > 0), key=lambda kv: -kv[1]))
    return Idle(
        runner, source, window, cpu, 100 * cpu / window, by_process, delivered, ack, loadavg, by_thread
    )


def _send_until_printed(
    src: _Source, printed: _Printed, proc: subprocess.Popen[str], event_id: str, timeout: float
) -> None:
    """The first event, sent again every few seconds until printed: a queue source may not have
    subscribed yet when the run starts, and the webhook may not be listening yet."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            src.send(event_id)
            with contextlib.suppress(RuntimeError):
                printed.wait_for(event_id, proc, 15)
                return
        if proc.poll() is not None:
            raise RuntimeError(f"the run ended ({proc.returncode}):\n{''.join(printed.tail)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the run did not deliver an event within {timeout:.0f}s")
        time.sleep(1)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def measure_idle(runner: str, source: str, seconds: float = 60.0) -> float:
    """% of one core the run's processes use over ``seconds`` of idling (see :func:`run_idle`)."""
    return run_idle(runner, source, seconds).percent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", default="prism", choices=[*RUNNERS, "all"])
    ap.add_argument("--source", default="webhook", choices=[*SOURCES, "all"])
    ap.add_argument("--seconds", type=float, default=60.0, help="the measured window (default 60)")
    ap.add_argument("--settle", type=float, default=SETTLE_S, help="pause before the window")
    ap.add_argument("--json", action="store_true", help="one JSON object per run")
    ap.add_argument(
        "--execution",
        default="",
        help="spec.execution as a YAML flow mapping, e.g. '{checkpointInterval: 2s}'",
    )
    ap.add_argument("--threads", action="store_true", help="also print the CPU of each thread (name)")
    args = ap.parse_args(argv)
    import yaml

    execution = yaml.safe_load(args.execution) if args.execution else None
    runners = RUNNERS if args.runner == "all" else (args.runner,)
    sources = SOURCES if args.source == "all" else (args.source,)
    failed = False
    for runner in runners:
        for source in sources:
            try:
                r = run_idle(
                    runner, source, args.seconds, args.settle, execution=execution, threads=args.threads
                )
            except RuntimeError as e:
                print(f"{runner}/{source}: failed: {e}", file=sys.stderr)
                failed = True
                continue
            if args.json:
                print(json.dumps(asdict(r)), flush=True)
            else:
                ack = f", 202 after {r.first_ack_s * 1000:.0f} ms" if r.first_ack_s is not None else ""
                parts = ", ".join(f"{name} {t:.2f}" for name, t in sorted(r.by_process.items()))
                print(
                    f"{runner:6} {source:8} idle {r.percent:5.2f}% of a core "
                    f"({r.cpu_seconds:.2f} CPU-s in {r.seconds:.0f}s: {parts}); "
                    f"first event after: delivered in {r.first_event_s * 1000:.0f} ms{ack}; "
                    f"load {r.loadavg.split()[0]}",
                    flush=True,
                )
                for name, t in list(r.threads.items())[:25]:
                    print(f"    {t:7.2f} CPU-s  {name}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
