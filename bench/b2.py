"""B2 Kafka → jq filter → jq transform → Kafka, against a real broker (KRaft, one node).

Run alone: ``.venv/bin/python -m bench.b2 [--small N --large N --repeat R]``.

Input: ~1 KiB JSON orders (bench/data.py's event data) keyed by customer, over 3
partitions, produced once per size. Each run reads them with a fresh consumer group
from the beginning and writes the big orders (amount > 100, ~75%), priced, to a fresh
topic with the CloudEvents Kafka binding (binary mode), then commits its offsets.

Variants, same topics, same broker, same run:

- ``meshline``: ``meshline run`` (direct runner) of kafka → ``jq`` filter → ``jq``
  transform → kafka; ``max_events: N`` ends the run once everything is read; Meshline's
  jq compiles both programs to Python (``meshline/transforms/jqc``);
- ``python loop``: confluent-kafka ``consume(num_messages=1000)`` → orjson → the same
  filter and transform in Python → ``produce`` with the same ce_* headers → flush, commit;
- ``python loop + jq.py``: the same loop calling jq.py (libjq) for the filter and the
  transform on each event's CloudEvents JSON form;
- ``quix streams``: the plain loop's Python logic as a Quix Streams application
  (``bench/b2_quix.py``: filter → update → set_headers → to_topic, stopped once N
  records were processed), run by the python of its own virtualenv,
  ``~/.cache/meshline/quix/venv`` (:data:`QUIX`, created on first use; its pins collide with
  the project's). When that venv cannot be made, only this variant is left out.

CPU counted: the client process tree only (``wait4``); the broker is its own process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import orjson

from bench.data import make_event
from bench.harness import OUT, PY, Row, Scenario, canonical_json, meshline_bin, standalone

__all__ = ["main", "scenario"]

_SERVERS = contextlib.ExitStack()
atexit.register(_SERVERS.close)
FILTER = ".data.amount > 100"
PROGRAM = '.data.total = (.data.amount * .data.quantity) | .data.status = "big"'
TYPE = "dev.meshline.kafka.message"
# the Quix Streams baseline's own virtualenv, and what is installed into it
QUIX = "quixstreams==3.28.1"
QUIX_PINS = (QUIX, "orjson==3.13.0")
_CACHE = Path(os.environ.get("MESHLINE_CACHE") or Path.home() / ".cache" / "meshline")


def quix_python() -> str:
    """The python of a virtualenv with :data:`QUIX_PINS`, made on first use (``OSError`` if it cannot be)."""
    from tests.harness import one_at_a_time

    @one_at_a_time("quix")
    def provision() -> str:
        venv = _CACHE / "quix" / "venv"
        py, marker = venv / "bin" / "python", venv / ".complete"
        if marker.exists() and marker.read_text() == " ".join(QUIX_PINS) and py.exists():
            return str(py)
        base = shutil.which("python3") or sys.executable
        steps = [
            [base, "-m", "venv", "--clear", str(venv)],
            [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--cache-dir", str(_CACHE / "pip"), *QUIX_PINS],
        ]  # fmt: skip
        for cmd in steps:
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise OSError(f"{' '.join(cmd[:4])}: {e}") from e
            if done.returncode != 0:
                raise OSError(f"{' '.join(cmd[:4])} failed: {(done.stderr or done.stdout).strip()[-1500:]}")
        marker.write_text(" ".join(QUIX_PINS))
        return str(py)

    return provision()


def _yaml(bootstrap: str, topic: str, out: str, group: str, n: int) -> Path:
    path = OUT / f"b2-{group}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: bench-b2}}
spec:
  sources:
    - name: orders
      type: kafka
      config: {{bootstrap_servers: "{bootstrap}", topics: {topic}, group_id: {group}, max_events: {n}}}
  transformations:
    - {{name: price, type: jq, config: {{program: '{PROGRAM}'}}}}
  targets:
    - {{name: out, type: kafka, config: {{bootstrap_servers: "{bootstrap}", topic: {out}}}}}
  triggers:
    - {{name: big, filters: [{{jq: '{FILTER}'}}], steps: [price], target: out}}
""")
    return path


def _produce_input(bootstrap: str, n: int) -> str:
    from tests.integration.kafka.support import new_topic, produce

    topic = new_topic(bootstrap, 3, f"b2-in-{n}")
    rng = random.Random(42)

    def records():
        for i in range(n):
            e = make_event(i, rng)
            yield e["subject"].encode(), orjson.dumps(e["data"]), None

    produce(bootstrap, topic, records())
    return topic


def loop(bootstrap: str, topic: str, n: int, group: str, out: str, use_jq: bool) -> None:
    """The baselines: consume → parse → filter → transform → produce (binary CE headers) → commit."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    from meshline.connectors.kafka.source import record_time

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    md = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
        }
    )
    loads, dumps = orjson.loads, orjson.dumps
    source = f"kafka://{bootstrap}/{topic}".encode()
    if use_jq:
        import jq

        flt, prog = jq.compile(FILTER), jq.compile(PROGRAM)
    seen = 0
    last: dict[int, int] = {}
    while seen < n:
        for m in c.consume(num_messages=min(1000, n - seen), timeout=1.0):
            if m.error() is not None:
                raise SystemExit(str(m.error()))
            seen += 1
            part, off, key = m.partition(), m.offset(), m.key()
            last[part] = off
            ce_id = f"{topic}-{part}-{off}"
            time = record_time(m.timestamp()[1])
            data = loads(m.value())
            if use_jq:
                event = {
                    "specversion": "1.0",
                    "id": ce_id,
                    "source": source.decode(),
                    "type": TYPE,
                    "time": time,
                    "partitionkey": key.decode(),
                    "data": data,
                }
                if flt.input_value(event).first() is not True:
                    continue
                data = prog.input_value(event).first()["data"]
            else:
                if not data["amount"] > 100:
                    continue
                data["total"] = data["amount"] * data["quantity"]
                data["status"] = "big"
            headers = [
                ("ce_specversion", b"1.0"),
                ("ce_id", ce_id.encode()),
                ("ce_source", source),
                ("ce_type", TYPE.encode()),
                ("ce_time", time.encode()),
                ("ce_partitionkey", key),
                ("content-type", b"application/json"),
            ]
            while True:
                try:
                    p.produce(out, dumps(data), key, headers=headers)
                    break
                except BufferError:
                    p.poll(0.05)
        p.poll(0)
    if p.flush(60) != 0:
        raise SystemExit("records still in flight")
    c.commit(offsets=[TopicPartition(topic, k, v + 1) for k, v in last.items()], asynchronous=False)
    c.close()


def scenario(small: int, large: int) -> Scenario | None:
    try:
        from tests.servers.kafka import kafka_broker
    except ImportError as e:
        print(f"B2: not available ({e})", file=sys.stderr)
        return None
    try:
        broker = _SERVERS.enter_context(kafka_broker())
    except (RuntimeError, OSError) as e:
        print(f"B2: Kafka cannot start here: {e}", file=sys.stderr)
        return None
    bootstrap = broker.bootstrap
    variants = ["meshline", "meshline watched", "python loop", "python loop + jq.py"]
    quix = ""
    try:
        quix = quix_python()
        variants.append("quix streams")
    except OSError as e:
        print(f"B2: the quix streams variant is left out ({QUIX} cannot be installed: {e})", file=sys.stderr)
    inputs = {n: _produce_input(bootstrap, n) for n in (small, large)}
    outputs: dict[tuple[str, int], str] = {}

    def commands(n: int, dst: Path) -> dict[str, list[str]]:
        cmds: dict[str, list[str]] = {}
        for variant in variants:
            slug = "".join(c if c.isalnum() else "-" for c in variant)
            run = uuid.uuid4().hex[:8]
            group, out = f"b2-{slug}-{run}", f"b2-out-{slug}-{run}"
            outputs[(str(OUT / f"b2-out-{slug}"), n)] = out
            if variant.startswith("meshline"):
                spec = _yaml(bootstrap, inputs[n], out, group, n)
                cmds[variant] = [meshline_bin(), "run", str(spec), "--runner", "direct"]
                if variant == "meshline watched":  # --ui and the page's requests (bench/watched.py)
                    cmds[variant] = [PY, "-m", "bench.watched", *cmds[variant]]
            elif variant == "quix streams":
                # -I: no bench/ on sys.path (nor PYTHONPATH): the script sees its venv only
                cmds[variant] = [quix, "-I", str(Path(__file__).with_name("b2_quix.py"))]
                cmds[variant] += [bootstrap, inputs[n], str(n), group, out]
            else:
                jq_flag = "jq" if "jq" in variant else "plain"
                cmds[variant] = [
                    PY,
                    "-m",
                    "bench.b2",
                    "loop",
                    bootstrap,
                    inputs[n],
                    str(n),
                    group,
                    out,
                    jq_flag,
                ]
        return cmds

    def records(dst: Path) -> list[bytes]:
        """Each output record as its key and the event it carries (header order aside)."""
        from meshline.bindings import from_kafka
        from tests.integration.kafka.support import drain, end_offsets

        topic = outputs.get((str(dst), large))
        if not topic:
            return []
        out = []
        for m in drain(bootstrap, topic, expect=sum(end_offsets(bootstrap, topic).values())):
            event = from_kafka(m.key(), m.value(), m.headers())
            form = event.to_dict() if event is not None else {"undecodable": repr(m.value()[:200])}
            key = m.key().decode(errors="replace") if m.key() is not None else None
            out.append(canonical_json({"key": key, "event": form}))
        return out

    return Scenario(
        name="B2",
        title="Kafka → jq filter → jq transform → Kafka (local KRaft broker, not counted)",
        runner="direct (FnApiRunner), one worker",
        commands=commands,
        records=records,
        small=small,
        large=large,
        notes=["records/s per core of client CPU; the broker's CPU is not counted"],
    )


def main(argv: list[str] | None = None) -> list[Row]:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["loop"]:
        bootstrap, topic, n, group, out, flag = argv[1:7]
        loop(bootstrap, topic, int(n), group, out, flag == "jq")
        return []
    return standalone(__doc__, scenario, 20_000, 100_000, argv)


if __name__ == "__main__":
    main()
