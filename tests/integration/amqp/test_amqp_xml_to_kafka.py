"""pipelines/amqp-xml-to-kafka.yaml end to end: RabbitMQ → xml2json → filter → Kafka, on Prism.

3,000 XML orders (every third unpaid: filtered out), plus hostile and broken XML
(dead-lettered to the Kafka dead-letter topic with stage transform). Afterwards the
queue is empty: every message was acknowledged after delivery.
"""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import ROOT
from tests.integration.amqp.support import Rabbit
from tests.integration.kafka.support import drain, new_topic

pytestmark = pytest.mark.integration

PIPELINE = ROOT / "pipelines" / "amqp-xml-to-kafka.yaml"
N = 3000
HOSTILE = {
    "bomb": b'<!DOCTYPE o [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><order status="paid">&b;</order>',
    "xxe-file": b'<!DOCTYPE o [<!ENTITY x SYSTEM "file:///etc/passwd">]><order status="paid">&x;</order>',
    "xxe-net": b'<!DOCTYPE o [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]><order status="paid">&x;</order>',
    "broken": b'<order status="paid"><item>',
}


def _header(m, name: str) -> str | None:
    for k, v in m.headers() or ():
        if k == name:
            return v.decode()
    return None


def test_xml_orders_from_rabbitmq_reach_kafka_as_json(meshline, rabbitmq, kafka_for_amqp, tmp_path):
    bootstrap = kafka_for_amqp.bootstrap
    mq = Rabbit(rabbitmq.url())
    queue = mq.new_queue("orders-xml")
    topic, dlq = new_topic(bootstrap, prefix="paid"), new_topic(bootstrap, 1, prefix="dlq")
    messages = []
    for i in range(N):
        status = "open" if i % 3 == 0 else "paid"
        body = f'<order id="{i}" status="{status}"><item sku="a">1</item><item sku="b">2</item></order>'
        messages.append((body.encode(), {"message_id": f"o{i}", "content_type": "application/xml"}))
    messages += [
        (body, {"message_id": mid, "content_type": "application/xml"}) for mid, body in HOSTILE.items()
    ]
    mq.publish(queue, messages)
    params = {
        "amqp_url": rabbitmq.url(),
        "queue": queue,
        "bootstrap": bootstrap,
        "topic": topic,
        "dead_letter_topic": dlq,
        "idle": "5s",
    }
    args = [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
    r = meshline("run", str(PIPELINE), *args, timeout=600)  # unbounded source: Prism
    assert r.returncode == 0, r.stderr[-3000:]
    assert "guest:guest" not in r.stderr + r.stdout
    paid = {i for i in range(N) if i % 3}
    out = drain(bootstrap, topic, expect=len(paid))
    orders = [orjson.loads(m.value())["order"] for m in out]
    assert {int(o["@id"]) for o in orders} == paid
    assert len(orders) == len(paid)  # a clean run: no duplicates
    assert orders[0]["item"] == [{"@sku": "a", "#text": "1"}, {"@sku": "b", "#text": "2"}]
    assert _header(out[0], "ce_type") == "dev.meshline.amqp.message"
    assert _header(out[0], "content-type") == "application/json"
    dead = [orjson.loads(m.value()) for m in drain(bootstrap, dlq, expect=len(HOSTILE))]
    assert sorted(d["id"] for d in dead) == sorted(HOSTILE)
    assert all(d["meshlineerrorstage"] == "transform" and d["meshlinestep"] == "to-json" for d in dead)
    assert "root:" not in "".join(d.get("data", "") for d in dead)  # /etc/passwd never read
    assert mq.depth(queue) == 0
    mq.close()
