"""amqp target against a real RabbitMQ: binding headers, confirms, unroutable and refused messages."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.integration.amqp.support import Rabbit, events_in

pytestmark = pytest.mark.integration


def _integration(tmp: Path, url: str, target: str, events: list[dict]) -> Path:
    src = tmp / "in.jsonl"
    src.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    path = tmp / "it.yaml"
    path.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: amqp-target-it}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{src}"}}}}
  targets:
    - {{name: out, type: amqp, config: {{url: "{url}", {target}}}}}
    - {{name: dlq, type: file, config: {{path: "{tmp}/dlq"}}}}
  triggers:
    - name: all
      target: out
      delivery: {{retries: 1, backoff: {{delay: 10ms}}}}
  deadLetter: dlq
""")
    return path


def _events(n: int, type_: str = "app.created") -> list[dict]:
    return [
        {
            "specversion": "1.0",
            "id": f"{type_}-{i}",
            "source": "/t",
            "type": type_,
            "subject": f"s{i}",
            "data": {"i": i},
        }
        for i in range(n)
    ]


def test_binary_mode_routing_key_template_and_unroutable(meshline, rabbitmq, tmp_path):
    mq = Rabbit(rabbitmq.url())
    mq.ch.exchange_declare("events-x", exchange_type="topic", durable=True)
    queue = mq.new_queue("app")
    mq.ch.queue_bind(queue, "events-x", routing_key="app.#")
    events = _events(50) + _events(3, "other.thing")
    spec = _integration(tmp_path, rabbitmq.url(), 'exchange: events-x, routing_key: "{type}"', events)
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    got = mq.drain(queue)
    assert sorted(p.message_id for p, _ in got) == sorted(e["id"] for e in events[:50])
    props, body = got[0]
    assert props.delivery_mode == 2 and props.content_type == "application/json"
    assert props.headers["cloudEvents:type"] == "app.created" and props.headers["cloudEvents:source"] == "/t"
    assert (
        props.headers["cloudEvents:specversion"] == "1.0"
        and "cloudEvents:datacontenttype" not in props.headers
    )
    assert orjson.loads(body) == {"i": int(props.headers["cloudEvents:id"].rsplit("-", 1)[1])}
    dlq = events_in(tmp_path / "dlq")
    assert sorted(e["id"] for e in dlq) == [f"other.thing-{i}" for i in range(3)]
    assert all(e["meshlineerrorstage"] == "deliver" and "unroutable" in e["meshlineerror"] for e in dlq)
    mq.close()


def test_structured_mode_round_trips_through_the_source(meshline, rabbitmq, tmp_path):
    mq = Rabbit(rabbitmq.url())
    queue = mq.new_queue("structured")
    spec = _integration(tmp_path, rabbitmq.url(), f"routing_key: {queue}, mode: structured", _events(5))
    assert meshline("run", str(spec), "--runner", "direct").returncode == 0
    got = mq.drain(queue)
    assert len(got) == 5
    assert all(p.content_type == "application/cloudevents+json" for p, _ in got)
    assert sorted(orjson.loads(b)["id"] for _, b in got) == [f"app.created-{i}" for i in range(5)]
    mq.close()


def test_a_missing_exchange_dead_letters_with_the_broker_reason(meshline, rabbitmq, tmp_path):
    spec = _integration(tmp_path, rabbitmq.url(), "exchange: no-such-exchange, routing_key: x", _events(4))
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    dlq = events_in(tmp_path / "dlq")
    assert len(dlq) == 4 and all("404" in e["meshlineerror"] for e in dlq)
    assert "guest:guest" not in r.stderr


def test_an_unreachable_broker_is_retried_then_dead_lettered_without_the_password(meshline, tmp_path):
    from tests.harness import free_port

    url = f"amqp://user:s3cr3t-pw@127.0.0.1:{free_port()}/%2F"
    spec = _integration(tmp_path, url, "routing_key: q", _events(2))
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    dlq = events_in(tmp_path / "dlq")
    assert len(dlq) == 2 and all("after 2 attempts" in e["meshlineerror"] for e in dlq)
    assert all("s3cr3t-pw" not in e["meshlineerror"] for e in dlq)
    assert "s3cr3t-pw" not in r.stderr + r.stdout
