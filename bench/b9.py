"""B9 latency: webhook → ``http`` target and Kafka → Kafka, paced, per runner (Prism, Flink ``[local]``).

Run alone: ``.venv/bin/python -m bench.b9 [--rates 50 500] [--seconds 60] [--runners prism flink]
[--shapes webhook kafka] [--idle]``; ``make bench`` runs it as scenario ``B9``.

Each point is one ``meshline run`` (``--runner prism`` or ``--runner flink``) fed by an
open-loop sender: event ``i`` leaves at ``start + i / rate`` (:func:`bench.latency.schedule`)
whether or not earlier ones were answered. First a probe event proves the run is up (delivered
and acknowledged), then ``--warmup`` seconds of paced events that are checked but not measured,
then ``--seconds`` of measured ones. Times are this machine's clock (``time.time()``), read by
every process involved.

- webhook: each event is its own POST (binary CloudEvent, ``ce-id: b9-I``) on a kept-alive
  connection that is free, or a new one (the sender never waits for a connection); **ack** =
  the 202 at the client (Meshline answers once the event is committed); **delivery** = its
  arrival at a receiver on 127.0.0.1 (``python -m bench.b9 receive``, its own process) that
  the ``http`` target POSTs to;
- kafka: one-partition topics; each event is one record ``{"i": I}`` produced with
  ``linger.ms=0``; **delivery** = the time a consumer of the output topic (a thread here)
  receives it; **ack** = the first time the integration's consumer group's committed offset
  (an OffsetFetch every 20 ms) passes the record's offset.

Correctness, as in the other scenarios: every event (probe, warm-up, measured) must arrive
at the target and be acknowledged (202 / offset committed), else the point fails with the
missing ids; duplicates (allowed: at least once) are counted in the notes. The run is stopped
with Ctrl-C (SIGINT) once everything is in; ``/proc/loadavg`` is recorded with each point.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import faulthandler
import http.server
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.harness import OUT, PY, ROOT, meshline_bin
from bench.latency import LatencyRow, latency_table, loadavg, schedule, summary

__all__ = ["B9Failure", "KafkaLoad", "kafka_point", "main", "meshline_run", "receiver", "webhook_point"]

RUNNERS = ("prism", "flink")
SHAPES = ("webhook", "kafka")
START_TIMEOUT = 240.0  # a Flink job server's first start, on a loaded machine
SETTLE_TIMEOUT = 180.0  # after the last send: everything delivered and acknowledged by then
_SERVERS = contextlib.ExitStack()
atexit.register(_SERVERS.close)


class B9Failure(RuntimeError):
    """A point whose events were not all delivered and acknowledged, or whose run did not start."""


def _raise_fd_limit() -> None:
    """Open-loop senders hold one connection per unanswered request (hundreds on Flink)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _free_port() -> int:
    from tests.harness import free_port

    return free_port()


def _listening(port: int) -> bool:
    from tests.harness import listening

    return listening(port)


# ---------------------------------------------------------------------------- the run


@contextlib.contextmanager
def meshline_run(
    spec: Path, runner: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``meshline run SPEC --runner RUNNER`` in its own session; Ctrl-C (then SIGKILL) at the end."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("wb")
    proc = subprocess.Popen(
        [meshline_bin(), "run", str(spec), "--runner", runner],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
        preexec_fn=_interrupt_when_orphaned,
    )
    try:
        yield proc
    finally:
        stop(proc)
        out.close()


def _interrupt_when_orphaned() -> None:
    """In the child before exec: Ctrl-C it if this process dies (a crashed or killed bench would
    otherwise leave the run, in its own session, running with its runner)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG


def stop(proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Ctrl-C as a user would; the whole session is killed if it has not ended within ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"  the run did not stop within {timeout:.0f}s of Ctrl-C: killed", file=sys.stderr)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _alive(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise B9Failure(f"meshline run exited with {proc.returncode}:\n{tail}")


# ---------------------------------------------------------------------------- the receiver


class _Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the http target keeps connections alive
    out: Any = None
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        now = time.time()
        ident = self.headers.get("ce-id")
        if ident is None:  # structured or batch mode
            doc = orjson.loads(body)
            ids = [e["id"] for e in doc] if isinstance(doc, list) else [doc["id"]]
        else:
            ids = [ident]
        with self.lock:
            self.out.write("".join(f"{i} {now!r}\n" for i in ids))
            self.out.flush()
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def _receive(port: int, path: str) -> None:
    """``python -m bench.b9 receive PORT FILE``: record "ID TIME" for every event POSTed."""
    with open(path, "a") as out:
        _Receiver.out = out
        http.server.ThreadingHTTPServer.request_queue_size = 1024  # the default 5 drops bursts of connects
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
        server.daemon_threads = True
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        server.serve_forever(poll_interval=0.5)


class Arrivals:
    """The receiver's file read incrementally: first arrival time and count of every id."""

    def __init__(self, path: Path):
        self.path, self._pos = path, 0
        self.first: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def read(self) -> dict[str, float]:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self._pos)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1
            self._pos += end
            for line in chunk[:end].splitlines():
                ident, t = line.decode().split(" ")
                self.first.setdefault(ident, float(t))
                self.count[ident] = self.count.get(ident, 0) + 1
        return self.first


@contextlib.contextmanager
def receiver(folder: Path) -> Iterator[tuple[str, Arrivals]]:
    """A receiver process on 127.0.0.1: its URL and its :class:`Arrivals`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"arrivals-{uuid.uuid4().hex[:8]}.txt"
    port = _free_port()
    proc = subprocess.Popen([PY, "-m", "bench.b9", "receive", str(port), str(path)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise B9Failure("the receiver did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/", Arrivals(path)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait(done: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes], log: Path) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        _alive(proc, log)
        time.sleep(0.2)
    return True


def _check(what: str, sent: list[str], arrivals: Arrivals, unacked: list[str], notes: list[str]) -> None:
    first = arrivals.read()
    missing = [i for i in sent if i not in first]
    problems = []
    if missing:
        problems.append(f"{len(missing):,} of {len(sent):,} events never arrived (e.g. {missing[:5]})")
    if unacked:
        problems.append(f"{len(unacked):,} events not acknowledged (e.g. {unacked[:5]})")
    if problems:
        raise B9Failure(f"{what}: " + "; ".join(problems))
    dups = sum(arrivals.count.get(i, 0) - 1 for i in sent)
    notes.append(f"{len(sent):,} events in, all delivered and acknowledged; {dups} duplicates")


# ---------------------------------------------------------------------------- webhook


_WEBHOOK = """apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: bench-b9-webhook}}
spec:
  sources:
    - {{name: hook, type: http, config: {{port: {port}, path: /e, ack_timeout: 120s, max_in_flight: 8192}}}}
  targets:
    - {{name: out, type: http, config: {{url: "{url}"}}}}
  triggers:
    - {{name: all, target: out}}
"""


class _Connections:
    """Kept-alive connections to the webhook. A request takes an idle one or opens a new one, so
    the sender stays open loop (it never waits for a free connection) without opening a
    connection per event (at 500 events/s that churn, not Meshline, slowed the sender)."""

    def __init__(self, port: int):
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, ident: str) -> tuple[int, float, float]:
        """POST one binary CloudEvent: status (0: no answer), sent time, answer time."""
        body = orjson.dumps({"id": ident})
        request = (
            f"POST /e HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\ncontent-type: application/json\r\n"
            f"ce-specversion: 1.0\r\nce-id: {ident}\r\nce-source: bench/b9\r\nce-type: bench.b9\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body
        sent = time.time()
        for _ in range(2):  # a kept-alive connection the server has just closed: once more on a new one
            reused = bool(self.idle)
            status, answered = await self._exchange(request, self.idle.pop() if reused else None)
            if status or not reused:
                break
        return status, sent, answered

    async def _exchange(
        self, request: bytes, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None
    ) -> tuple[int, float]:
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = conn
            writer.write(request)
            line = await reader.readline()
            answered = time.time()
            length, close = 0, not line
            while line:  # the headers, then the body, so the connection can carry the next request
                header = await reader.readline()
                if header in (b"\r\n", b"\n", b""):
                    break
                key, _, value = header.decode("latin-1").partition(":")
                if key.strip().lower() == "content-length":
                    length = int(value)
                elif key.strip().lower() == "connection" and "close" in value.lower():
                    close = True
            if length:
                await reader.readexactly(length)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            if conn is not None:
                conn[1].close()
            return 0, time.time()
        if close:
            writer.close()
        else:
            self.idle.append(conn)
        parts = line.split()
        return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), answered


async def _webhook_load(
    port: int,
    rate: float,
    warm: int,
    count: int,
    arrivals: Arrivals,
    proc: subprocess.Popen[bytes],
    log: Path,
) -> tuple[list[str], dict[str, tuple[int, float, float]], list[float]]:
    connections = _Connections(port)
    probes: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while True:  # the probe: a 202, then its arrival
        _alive(proc, log)
        probes.append(f"b9-probe-{len(probes)}")
        status, _, _ = await connections.post(probes[-1])
        if status == 202:
            break
        if time.monotonic() > deadline:
            raise B9Failure("webhook: no 202 for the probe")
        await asyncio.sleep(0.5)
    while probes[-1] not in arrivals.read():
        if time.monotonic() > deadline:
            raise B9Failure("webhook: the probe was acknowledged but never arrived")
        _alive(proc, log)
        await asyncio.sleep(0.1)
    loop = asyncio.get_running_loop()
    start = time.time() + 0.1
    tasks, late = [], []
    for i, due in enumerate(schedule(rate, warm + count, start)):
        wait = due - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        late.append(time.time() - due)
        tasks.append(loop.create_task(connections.post(f"b9-{i}")))
    results = await asyncio.gather(*tasks)
    return probes[-1:], {f"b9-{i}": r for i, r in enumerate(results)}, late


def webhook_point(runner: str, rate: float, seconds: float, warmup: float, folder: Path) -> LatencyRow:
    _raise_fd_limit()
    warm, count = round(warmup * rate), round(seconds * rate)
    port = _free_port()
    with receiver(folder) as (url, arrivals):
        spec = folder / f"b9-webhook-{runner}.yaml"
        spec.write_text(_WEBHOOK.format(port=port, url=url))
        log = folder / f"b9-webhook-{runner}-{rate:.0f}.log"
        with meshline_run(spec, runner, log) as proc:
            probes, answers, late = asyncio.run(_webhook_load(port, rate, warm, count, arrivals, proc, log))
            ids = list(answers)
            _wait(lambda: all(i in arrivals.read() for i in ids), SETTLE_TIMEOUT, proc, log)
        notes: list[str] = []
        unacked = [i for i, (status, _, _) in answers.items() if status != 202]
        _check(f"B9 webhook {runner} {rate:.0f}/s", probes + ids, arrivals, unacked, notes)
        first = arrivals.read()
        measured = ids[warm:]
        delivery = [first[i] - answers[i][1] for i in measured]
        ack = [answers[i][2] - answers[i][1] for i in measured]
    notes.append(f"sender late p99 {summary(late)[2] * 1000:.1f} ms (open loop)")
    return LatencyRow(
        "webhook → http", runner, rate, count, summary(delivery), summary(ack), loadavg(), notes
    )


# ---------------------------------------------------------------------------- kafka


_KAFKA = """apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: bench-b9-kafka}}
spec:
  sources:
    - name: orders
      type: kafka
      config: {{bootstrap_servers: "{bootstrap}", topics: {topic}, group_id: {group}}}
  targets:
    - {{name: out, type: kafka, config: {{bootstrap_servers: "{bootstrap}", topic: {out}}}}}
  triggers:
    - {{name: all, target: out}}
"""


def kafka_broker() -> str:
    """A local broker for the rest of this process (``tests/servers/kafka.py``): its bootstrap address."""
    from tests.servers.kafka import kafka_broker as start

    return str(_SERVERS.enter_context(start()).bootstrap)


_ADMINS: dict[str, Any] = {}


def _admin(bootstrap: str) -> Any:
    """One admin client per broker for the whole process: confluent-kafka 2.16 crashed (SIGSEGV)
    here when an admin client was freed with an event still in its background queue."""
    from confluent_kafka.admin import AdminClient

    if bootstrap not in _ADMINS:
        _ADMINS[bootstrap] = AdminClient({"bootstrap.servers": bootstrap})
    return _ADMINS[bootstrap]


class KafkaLoad:
    """A paced producer into a fresh one-partition topic, a consumer of the output topic and a
    poller of the integration's committed offset, for B9 and the soak."""

    POLL = 0.02  # seconds between two reads of the committed offset

    def __init__(self, bootstrap: str):
        from confluent_kafka import Consumer, Producer

        self.bootstrap = bootstrap
        self._admin = _admin(bootstrap)
        self.topic, self.out = self._topic("b9-in"), self._topic("b9-out")
        self.group = f"b9-{uuid.uuid4().hex[:8]}"
        self.sent: dict[int, float] = {}
        self.offsets: dict[int, int] = {}
        self.errors: list[str] = []
        self.poll_errors = 0  # committed-offset reads that failed (retried on the next poll)
        self.first: dict[int, float] = {}
        self.count: dict[int, int] = {}
        self.commits: list[tuple[float, int]] = [(0.0, 0)]  # (time, committed offset), increasing
        self.late: list[float] = []
        self._stop = threading.Event()
        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{self.group}-reader",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self._threads = [
            threading.Thread(target=self._consume, daemon=True),
            threading.Thread(target=self._poll_commits, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _topic(self, prefix: str) -> str:
        from confluent_kafka.admin import NewTopic

        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self._admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)
        return name

    def spec(self, folder: Path, name: str) -> Path:
        path = folder / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            _KAFKA.format(bootstrap=self.bootstrap, topic=self.topic, group=self.group, out=self.out)
        )
        return path

    def _consume(self) -> None:
        from confluent_kafka import TopicPartition

        self._consumer.assign([TopicPartition(self.out, 0, 0)])
        while not self._stop.is_set():
            m = self._consumer.poll(0.1)  # returns on the first record (consume() waits to fill a batch)
            now = time.time()
            if m is None:
                continue
            if m.error() is not None:
                self.errors.append(str(m.error()))
                continue
            i = int(orjson.loads(m.value() or b"{}")["i"])
            self.first.setdefault(i, now)
            self.count[i] = self.count.get(i, 0) + 1
        self._consumer.close()

    def _poll_commits(self) -> None:
        """The integration's committed offset of the input partition, read every :data:`POLL` s.

        An OffsetFetch of the group from a consumer that never joins it (no subscription, no
        commits of its own); admin-client reads from this thread crashed confluent-kafka 2.16."""
        from confluent_kafka import Consumer, TopicPartition

        reader = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False}
        )
        try:
            while not self._stop.wait(self.POLL):
                try:
                    offset = reader.committed([TopicPartition(self.topic, 0)], timeout=10)[0].offset
                except Exception:
                    self.poll_errors += 1
                    continue
                if offset > self.commits[-1][1]:
                    self.commits.append((time.time(), offset))
        finally:
            reader.close()

    def produce(self, i: int) -> None:
        def delivered(err: Any, msg: Any, i: int = i) -> None:
            if err is not None:
                self.errors.append(f"produce {i}: {err}")
            else:
                self.offsets[i] = msg.offset()

        self.sent[i] = time.time()
        self._producer.produce(self.topic, orjson.dumps({"i": i}), on_delivery=delivered)
        self._producer.poll(0)

    def probe(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        """Probe records (negative ids), one a second, until one has come through."""
        deadline = time.monotonic() + START_TIMEOUT
        i = -1
        while not self.first:
            _alive(proc, log)
            if time.monotonic() > deadline:
                raise B9Failure(f"kafka: no probe record came through in {START_TIMEOUT:.0f}s")
            self.produce(i)
            i -= 1
            self._producer.flush(10)
            for _ in range(10):
                if self.first:
                    break
                time.sleep(0.1)

    def send(self, rate: float, count: int, first: int = 0, stop: threading.Event | None = None) -> None:
        """Records ``first … first+count-1`` at ``rate``/s, open loop (``stop`` ends it early)."""
        start = time.time() + 0.1
        for i, due in enumerate(schedule(rate, count, start), first):
            if stop is not None and stop.is_set():
                break
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            self.late.append(time.time() - due)
            self.produce(i)
        if self._producer.flush(60) != 0:
            self.errors.append("records still unsent after 60 s")

    def settled(self) -> bool:
        """Every record sent is at the target and committed."""
        return (
            len(self.offsets) == len(self.sent)
            and all(i in self.first for i in self.sent)
            and self.commits[-1][1] > max(self.offsets.values(), default=-1)
        )

    def ack_times(self, ids: list[int]) -> dict[int, float]:
        """For each id, the first time the committed offset passed its record's offset."""
        import bisect

        offsets = [o for _, o in self.commits]
        out = {}
        for i in ids:
            k = bisect.bisect_right(offsets, self.offsets[i])
            if k < len(self.commits):
                out[i] = self.commits[k][0]
        return out

    def check(self, what: str, notes: list[str]) -> None:
        ids = sorted(self.sent)
        missing = [i for i in ids if i not in self.first]
        unacked = [i for i in ids if self.offsets.get(i, 1 << 62) >= self.commits[-1][1]]
        problems = []
        if self.errors:
            problems.append(f"{len(self.errors)} client errors (e.g. {self.errors[:3]})")
        if missing:
            problems.append(f"{len(missing):,} of {len(ids):,} records never arrived (e.g. {missing[:5]})")
        if unacked:
            problems.append(f"{len(unacked):,} records not committed (e.g. {unacked[:5]})")
        if problems:
            raise B9Failure(f"{what}: " + "; ".join(problems))
        dups = sum(self.count[i] - 1 for i in ids)
        notes.append(f"{len(ids):,} records in, all delivered and committed; {dups} duplicates")
        if self.poll_errors:
            notes.append(f"{self.poll_errors} committed-offset reads failed and were retried")

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)


def kafka_point(
    bootstrap: str, runner: str, rate: float, seconds: float, warmup: float, folder: Path
) -> LatencyRow:
    warm, count = round(warmup * rate), round(seconds * rate)
    load = KafkaLoad(bootstrap)
    log = folder / f"b9-kafka-{runner}-{rate:.0f}.log"
    try:
        with meshline_run(load.spec(folder, f"b9-kafka-{runner}"), runner, log) as proc:
            load.probe(proc, log)
            load.send(rate, warm + count)
            _wait(load.settled, SETTLE_TIMEOUT, proc, log)
    finally:
        load.close()
    notes: list[str] = []
    load.check(f"B9 kafka {runner} {rate:.0f}/s", notes)
    measured = list(range(warm, warm + count))
    acked = load.ack_times(measured)
    delivery = [load.first[i] - load.sent[i] for i in measured]
    ack = [acked[i] - load.sent[i] for i in measured]
    notes.append(
        f"sender late p99 {summary(load.late)[2] * 1000:.1f} ms; "
        f"committed offset read every {KafkaLoad.POLL * 1000:.0f} ms"
    )
    return LatencyRow("kafka → kafka", runner, rate, count, summary(delivery), summary(ack), loadavg(), notes)


# ---------------------------------------------------------------------------- the scenario


def run(
    runners: list[str],
    shapes: list[str],
    rates: list[float],
    seconds: float,
    warmup: float,
    on_row: Callable[[LatencyRow], None] | None = None,
) -> tuple[list[LatencyRow], list[str]]:
    """Every point (shape × runner × rate); rows, and a line per point that failed."""
    folder = OUT / "b9"
    rows: list[LatencyRow] = []
    failures: list[str] = []
    bootstrap = None
    for shape in shapes:
        for runner in runners:
            for rate in rates:
                print(f"  B9 {shape} on {runner} at {rate:.0f} events/s …", file=sys.stderr)
                try:
                    if shape == "webhook":
                        row = webhook_point(runner, rate, seconds, warmup, folder)
                    else:
                        bootstrap = bootstrap or kafka_broker()
                        row = kafka_point(bootstrap, runner, rate, seconds, warmup, folder)
                except B9Failure as e:
                    failures.append(f"{shape} {runner} {rate:.0f}/s: {e}")
                    print(f"  FAILED: {e}", file=sys.stderr)
                    continue
                rows.append(row)
                print(latency_table([row]).splitlines()[1], file=sys.stderr)
                if on_row is not None:
                    on_row(row)
    return rows, failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runners", nargs="*", default=list(RUNNERS), choices=RUNNERS)
    ap.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=SHAPES)
    ap.add_argument("--rates", nargs="*", type=float, default=[50.0, 500.0])
    ap.add_argument("--seconds", type=float, default=60.0, help="measured seconds per point")
    ap.add_argument("--warmup", type=float, default=10.0, help="paced seconds before measuring")
    args = ap.parse_args(argv)
    rows, failures = run(args.runners, args.shapes, args.rates, args.seconds, args.warmup)
    print(latency_table(rows))
    for row in rows:
        print(f"- {row.shape} {row.runner} {row.rate:.0f}/s: " + "; ".join(row.notes))
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    faulthandler.enable()
    if sys.argv[1:2] == ["receive"]:
        _receive(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(main())
