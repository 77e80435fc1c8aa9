"""amqp source against a real RabbitMQ: delivery, pass-through, dead letters, ack after commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.integration.amqp.support import Rabbit, events_in

pytestmark = pytest.mark.integration
EXE = str(Path(sys.executable).parent / "meshline")


def _integration(path: Path, url: str, queue: str, out: Path, extra: str = "", window: str = "null") -> Path:
    path.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: amqp-it}}
spec:
  sources:
    - name: in
      type: amqp
      config:
        url: "{url}"
        queue: {queue}
        {extra}
  targets:
    - {{name: out, type: file, config: {{path: "{out}/events", window: {window}}}}}
    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}
  triggers:
    - {{name: all, target: out}}
  deadLetter: dlq
""")
    return path


def _mixed() -> list[tuple[bytes, dict]]:
    msgs: list[tuple[bytes, dict]] = []
    for i in range(30):  # plain JSON, no message id: a digest id
        msgs.append((orjson.dumps({"n": i}), {"headers": {"origin": "test", "Bad-Name": "x"}}))
    for i in range(5):  # structured CloudEvents pass through
        ce = {
            "specversion": "1.0",
            "id": f"ce-{i}",
            "source": "/app",
            "type": "app.created",
            "data": {"i": i},
        }
        msgs.append((orjson.dumps(ce), {"content_type": "application/cloudevents+json"}))
    for i, prefix in enumerate(["cloudEvents:", "cloudEvents_", "cloudEvents:", "cloudEvents_"]):
        headers = {
            f"{prefix}{k}": v for k, v in [("specversion", "1.0"), ("id", f"bin-{i}"), ("source", "/b")]
        }
        headers[f"{prefix}type"] = "app.binary"
        msgs.append((b'{"b": 1}', {"headers": headers, "content_type": "application/json"}))
    msgs.append((b"<order id='7'/>", {"content_type": "application/xml", "message_id": "xml-1"}))
    msgs.append((b"{not json", {"content_type": "application/cloudevents+json", "message_id": "broken-1"}))
    bad_binary = {"cloudEvents:specversion": "1.0", "cloudEvents:id": "b", "cloudEvents:source": "/b"}
    msgs.append((b"{}", {"headers": bad_binary, "message_id": "broken-2"}))  # no type: invalid
    return msgs


def test_every_message_delivered_pass_through_and_dead_letters(meshline, rabbitmq, tmp_path):
    mq = Rabbit(rabbitmq.url())
    queue = mq.new_queue()
    msgs = _mixed()
    mq.publish(queue, msgs)
    out = tmp_path / "out"
    spec = _integration(tmp_path / "it.yaml", rabbitmq.url(), queue, out, extra=f"max_events: {len(msgs)}")
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    assert "guest:guest" not in r.stderr
    events, dlq = events_in(out / "events"), events_in(out / "dlq")
    wrapped = [e for e in events if e["type"] == "dev.meshline.amqp.message"]
    plain = [e for e in wrapped if "n" in (e.get("data") or {})]
    assert sorted(e["data"]["n"] for e in plain) == list(range(30))
    assert len({e["id"] for e in plain}) == 30
    assert all(e["origin"] == "test" and "Bad-Name" not in e and e["amqproutingkey"] == queue for e in plain)
    assert all(e["source"] == f"amqp://127.0.0.1:{rabbitmq.port}/%2F/{queue}" for e in wrapped)
    (xml,) = [e for e in wrapped if e["id"] == "xml-1"]
    assert xml["data"] == "<order id='7'/>" and xml["datacontenttype"] == "application/xml"
    assert sorted(e["id"] for e in events if e["type"] == "app.created") == [f"ce-{i}" for i in range(5)]
    binary = [e for e in events if e["type"] == "app.binary"]
    assert sorted(e["id"] for e in binary) == [f"bin-{i}" for i in range(4)]
    assert all(e["data"] == {"b": 1} and e["datacontenttype"] == "application/json" for e in binary)
    assert sorted(e["id"] for e in dlq) == ["broken-1", "broken-2"]
    assert all(e["meshlineerrorstage"] == "decode" and e["meshlineerror"] for e in dlq)
    assert len(events) + len(dlq) == len(msgs)
    assert mq.depth(queue) == 0  # every message acknowledged (the run's connection is closed)
    mq.close()


def test_a_failed_run_acknowledges_nothing(meshline, rabbitmq, tmp_path):
    mq = Rabbit(rabbitmq.url())
    queue = mq.new_queue()
    mq.publish(queue, [(orjson.dumps({"n": i}), {}) for i in range(20)])
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the target wants a directory")
    spec = _integration(tmp_path / "it.yaml", rabbitmq.url(), queue, blocker, extra="max_events: 20")
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert mq.depth(queue) == 20  # all requeued: none was acknowledged
    mq.close()


def test_max_events_and_idle_timeout_end_a_run(meshline, rabbitmq, tmp_path):
    mq = Rabbit(rabbitmq.url())
    queue = mq.new_queue()
    mq.publish(queue, [(orjson.dumps({"n": i}), {"message_id": f"m{i}"}) for i in range(20)])
    out = tmp_path / "a"
    spec = _integration(
        tmp_path / "a.yaml", rabbitmq.url(), queue, out, extra="max_events: 8\n        batch: 3"
    )
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    first = [e["id"] for e in events_in(out / "events")]
    assert len(first) == 8
    assert mq.depth(queue) == 12  # the prefetched rest went back to the queue
    out2 = tmp_path / "b"
    spec = _integration(tmp_path / "b.yaml", rabbitmq.url(), queue, out2, extra="idle_timeout: 3s")
    r = meshline("run", str(spec), "--runner", "direct", timeout=120)  # the idle timeout ends it
    assert r.returncode == 0, r.stderr
    second = [e["id"] for e in events_in(out2 / "events")]
    assert sorted(first + second) == sorted(f"m{i}" for i in range(20))
    assert mq.depth(queue) == 0
    mq.close()


def test_declares_a_queue_bound_to_an_exchange(meshline, rabbitmq, tmp_path):
    mq = Rabbit(rabbitmq.url())
    mq.ch.exchange_declare("orders-x", exchange_type="topic", durable=True)
    queue = "bound-" + os.urandom(4).hex()
    out = tmp_path / "out"
    extra = "exchange: orders-x\n        routing_key: 'order.*'\n        idle_timeout: 3s"
    spec = _integration(tmp_path / "it.yaml", rabbitmq.url(), queue, out, extra=extra)
    # First run declares and binds the queue; nothing is there yet.
    assert meshline("run", str(spec), "--runner", "direct").returncode == 0
    for key in ("order.created", "order.paid", "invoice.sent"):
        mq.ch.basic_publish("orders-x", key, orjson.dumps({"key": key}))
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    keys = sorted(e["data"]["key"] for e in events_in(out / "events"))
    assert keys == ["order.created", "order.paid"]
    assert all(e["amqpexchange"] == "orders-x" for e in events_in(out / "events"))
    mq.close()


def test_a_missing_queue_fails_with_a_clear_error_and_no_password(meshline, rabbitmq, tmp_path):
    spec = _integration(
        tmp_path / "it.yaml", rabbitmq.url(), "no-such-queue", tmp_path / "o", "max_events: 1"
    )
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode != 0
    assert "no-such-queue" in r.stderr and "404" in r.stderr
    assert "guest:guest" not in r.stderr and "Traceback" not in r.stderr


def _relay(
    path: Path, url: str, queue: str, out_queue: str, extra: str, dlq_queue: str | None = None
) -> Path:
    """queue → out_queue; with ``dlq_queue``, dead letters go there (an amqp dead-letter target)."""
    dlq_target = f'    - {{name: dlq, type: amqp, config: {{url: "{url}", routing_key: {dlq_queue}}}}}\n'
    path.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: amqp-relay}}
spec:
  sources:
    - {{name: in, type: amqp, config: {{url: "{url}", queue: {queue}, {extra}}}}}
  targets:
    - {{name: out, type: amqp, config: {{url: "{url}", routing_key: {out_queue}}}}}
{dlq_target if dlq_queue else ""}  triggers:
    - {{name: all, target: out}}
{"  deadLetter: dlq" if dlq_queue else ""}
""")
    return path


def test_sigkill_midway_then_rerun_loses_nothing(rabbitmq, tmp_path):
    """Streaming on Prism: the target publishes (confirmed) inside the bundle the source acknowledges."""
    mq = Rabbit(rabbitmq.url())
    queue, out_queue, dlq_queue = mq.new_queue("in"), mq.new_queue("out"), mq.new_queue("dlq")
    ids = [f"k{i}" for i in range(300)]
    bad = {m for i, m in enumerate(ids) if i % 25 == 11}  # broken CloudEvents: decode dead letters
    broken = {"content_type": "application/cloudevents+json"}
    mq.publish(
        queue,
        [
            (b"{not json", {**broken, "message_id": m})
            if m in bad
            else (orjson.dumps({"n": i}), {"message_id": m})
            for i, m in enumerate(ids)
        ],
    )
    endless = _relay(tmp_path / "a.yaml", rabbitmq.url(), queue, out_queue, "batch: 5", dlq_queue)
    proc = subprocess.Popen(
        [EXE, "run", str(endless)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and mq.depth(out_queue) < 50:
            time.sleep(0.2)
        assert mq.depth(out_queue) >= 50, "the first run published nothing"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and the Prism job server it started
        proc.wait(timeout=30)
    first = mq.depth(out_queue)
    assert first < len(ids) - len(bad), "the first run finished before it was killed: no test"
    assert mq.depth(queue) > 0, "the kill must land midway: messages left to read again"
    # The killed run's connection is gone: the broker requeued everything unacknowledged.
    again = _relay(tmp_path / "b.yaml", rabbitmq.url(), queue, out_queue, "idle_timeout: 5s", dlq_queue)
    r = subprocess.run([EXE, "run", str(again)], capture_output=True, timeout=300, check=False)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err[-3000:]
    assert mq.depth(queue) == 0
    delivered = [props.message_id for props, _ in mq.drain(out_queue)]
    assert set(delivered) == set(ids) - bad  # at least once: nothing lost (a few may come twice)
    assert len(delivered) < 2 * len(ids)
    dead = [props.message_id for props, _ in mq.drain(dlq_queue)]
    assert set(dead) == bad  # every dead letter too, whichever run wrote it
    mq.close()


def test_connections_closed_by_the_broker_midway_lose_nothing(rabbitmq, tmp_path):
    """The broker drops every connection mid-run: the source reconnects, the target retries."""
    mq = Rabbit(rabbitmq.url())
    queue, out_queue = mq.new_queue("in"), mq.new_queue("out")
    ids = [f"c{i}" for i in range(300)]
    mq.publish(queue, [(orjson.dumps({"n": i}), {"message_id": m}) for i, m in enumerate(ids)])
    mq.close()
    spec = _relay(tmp_path / "a.yaml", rabbitmq.url(), queue, out_queue, "batch: 5, idle_timeout: 5s")
    proc = subprocess.Popen([EXE, "run", str(spec)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    probe = Rabbit(rabbitmq.url())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and probe.depth(out_queue) < 30:
        time.sleep(0.2)
    probe.close()
    rabbitmq.ctl("close_all_connections", "test: broker restart")
    probe = Rabbit(rabbitmq.url())
    assert probe.depth(out_queue) < len(ids), "the run finished before the connections were closed: no test"
    probe.close()
    _, err = proc.communicate(timeout=300)
    text = err.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "CONNECTION_FORCED" in text  # the pipeline saw its connections go (and recovered)
    mq = Rabbit(rabbitmq.url())
    assert mq.depth(queue) == 0
    delivered = [props.message_id for props, _ in mq.drain(out_queue)]
    assert set(delivered) == set(ids)  # at least once: redeliveries allowed, nothing lost
    mq.close()
