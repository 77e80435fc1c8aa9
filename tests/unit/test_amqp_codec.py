"""The CloudEvents AMQP binding both ways, routing key templates, URLs without passwords."""

from __future__ import annotations

import datetime as dt

import pytest
from pika.spec import Basic, BasicProperties

from meshline.config import parse_config
from meshline.connectors.amqp import (
    AmqpSourceConfig,
    AmqpTargetConfig,
    event_to_message,
    message_to_event,
    safe_url,
)
from meshline.connectors.amqp.codec import render_key, source_uri
from meshline.connectors.delivery import PermanentError
from meshline.errors import ConfigError, EventError
from meshline.events import CloudEvent

SRC = "amqp://rabbit/%2F/orders"


def _deliver(routing_key: str = "orders", exchange: str = "") -> Basic.Deliver:
    return Basic.Deliver(delivery_tag=1, exchange=exchange, routing_key=routing_key)


def test_binary_round_trip_keeps_every_attribute_and_the_data():
    event = CloudEvent.create(
        id="1",
        source="/s",
        type="t",
        subject="sub",
        data={"a": [1, 2]},
        traceparent="00-ab",
        count=3,
        ok=True,
    )
    for prefix in ("cloudEvents:", "cloudEvents_"):
        props, body = event_to_message(event, "binary", prefix)
        assert props["headers"][prefix + "id"] == "1" and props["content_type"] == "application/json"
        back = message_to_event(SRC, _deliver(), BasicProperties(**props), body)
        assert back == event.replace(datacontenttype="application/json")  # the binding names the type


def test_structured_round_trip_and_text_data():
    event = CloudEvent.create(id="2", source="/s", type="t", datacontenttype="text/plain", data="héllo")
    props, body = event_to_message(event, "structured")
    assert props["content_type"] == "application/cloudevents+json"
    assert message_to_event(SRC, _deliver(), BasicProperties(**props), body) == event
    props, body = event_to_message(event, "binary")
    assert body == "héllo".encode() and props["content_type"] == "text/plain"
    assert message_to_event(SRC, _deliver(), BasicProperties(**props), body) == event


def test_a_plain_message_is_wrapped_with_a_stable_id():
    props = BasicProperties(
        content_type="application/xml", timestamp=1_700_000_000, headers={"tenant": "a", "X-Y": 1}
    )
    e1 = message_to_event(SRC, _deliver(exchange="x"), props, b"<a/>")
    e2 = message_to_event(
        SRC, Basic.Deliver(delivery_tag=99, exchange="x", routing_key="orders"), props, b"<a/>"
    )
    assert e1.id == e2.id and len(e1.id) == 32  # redelivery keeps the id
    assert e1.type == "dev.meshline.amqp.message" and e1.source == SRC
    assert e1.data == "<a/>" and e1.attributes["datacontenttype"] == "application/xml"
    assert e1.attributes["time"] == dt.datetime.fromtimestamp(1_700_000_000, dt.UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert e1.attributes["tenant"] == "a" and "x-y" not in e1.attributes
    assert e1.attributes["amqpexchange"] == "x" and e1.attributes["amqproutingkey"] == "orders"
    other = message_to_event(SRC, _deliver(), props, b"<b/>")
    assert other.id != e1.id
    named = message_to_event(SRC, _deliver(), BasicProperties(message_id="m-1"), b'{"n": 1}')
    assert named.id == "m-1" and named.data == {"n": 1} and "datacontenttype" not in named.attributes
    text = message_to_event(SRC, _deliver(), BasicProperties(), b"not json")
    assert text.data == "not json" and text.attributes["datacontenttype"] == "text/plain"
    raw = message_to_event(SRC, _deliver(), BasicProperties(content_type="image/png"), b"\x89PNG")
    assert raw.data == b"\x89PNG"


@pytest.mark.parametrize(
    "props, body",
    [
        ({"content_type": "application/cloudevents+json"}, b"{broken"),
        ({"content_type": "application/cloudevents+json"}, b'{"id": "1"}'),
        ({"content_type": "application/cloudevents-batch+json"}, b"[]"),
        (
            {
                "headers": {
                    "cloudEvents:specversion": "1.0",
                    "cloudEvents:id": "1",
                    "cloudEvents:source": "/s",
                }
            },
            b"",
        ),
        (
            {
                "headers": {
                    "cloudEvents:specversion": "1.0",
                    "cloudEvents:id": "1",
                    "cloudEvents:source": "/s",
                    "cloudEvents:type": "t",
                },
                "content_type": "application/json",
            },
            b"{not json",
        ),
    ],
)
def test_broken_cloudevents_raise(props, body):
    with pytest.raises(EventError):
        message_to_event(SRC, _deliver(), BasicProperties(**props), body)


def test_routing_key_templates():
    event = CloudEvent.create(id="1", source="/s", type="order.created", subject="eu")
    assert render_key("{type}.{subject}", event) == "order.created.eu"
    assert render_key("fixed", event) == "fixed"
    with pytest.raises(PermanentError, match="no attribute 'region'"):
        render_key("{region}", event)
    with pytest.raises(ConfigError, match="routing_key"):
        parse_config(AmqpTargetConfig, {"url": "amqp://h/", "routing_key": "{type!r}"}, where="t")


def test_urls_never_show_the_password():
    assert safe_url("amqp://user:s3cret@host:5672/%2F") == "amqp://user:***@host:5672/%2F"
    assert safe_url("amqp://host/") == "amqp://host/"
    assert source_uri("amqp://u:p@rabbit:5672/%2F", "q") == "amqp://rabbit/%2F/q"
    assert source_uri("amqp://u:p@rabbit:5673/prod", "q") == "amqp://rabbit:5673/prod/q"
    with pytest.raises(ConfigError) as e:
        parse_config(AmqpSourceConfig, {"url": "http://u:s3cret@h/", "queue": "q"}, where="t")
    assert "s3cret" not in str(e.value)
