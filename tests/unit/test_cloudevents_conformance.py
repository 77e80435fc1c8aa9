"""CloudEvents 1.0.2 conformance: the JSON format and the HTTP, Kafka and AMQP bindings.

Each case cites the text it comes from: spec.md ("Type System", "Context
Attributes", the attributes' constraints), formats/json-format.md (§2.2, §3.1, §4),
bindings/http-protocol-binding.md (§3.1.1, §3.1.3.2), bindings/kafka-protocol-binding.md
(§3.1, §3.2.1, §3.2.3) and bindings/amqp-protocol-binding.md (§3.1). Valid input —
including the specification's own examples — must be accepted; invalid input must be
refused with a reason naming the attribute and the rule. Round trips go through the
``cloudevents`` SDK (2.2: ``cloudevents.core`` and the older ``cloudevents.v1`` API) in
both directions.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import apache_beam as beam
import orjson
import pytest
from cloudevents.core.bindings import amqp as sdk_amqp
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.bindings import kafka as sdk_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from cloudevents.v1 import conversion as sdk_v1_conversion
from cloudevents.v1 import http as sdk_v1_http
from hypothesis import given, settings
from hypothesis import strategies as st
from pika.spec import Basic, BasicProperties

from meshline.bindings import (
    from_http,
    from_kafka,
    to_http_binary,
    to_http_structured,
    to_kafka_binary,
    to_kafka_structured,
)
from meshline.coder import CloudEventCoder
from meshline.compiler import build_pipeline
from meshline.connectors.amqp import event_to_message, message_to_event
from meshline.errors import EventError
from meshline.events import CloudEvent, from_json, from_json_dict, to_json
from meshline.runners import in_process_runner
from meshline.spec import load_text

FMT = JSONFormat()
AMQP_SOURCE = "amqp://rabbit/%2F/q"
BASE = {"specversion": "1.0", "id": "A234-1234-1234", "source": "/mycontext", "type": "com.example.someevent"}


def event_dict(**attributes: Any) -> dict[str, Any]:
    return {**BASE, **attributes}


# --------------------------------------------------------------------------- wire helpers


def http_headers(attrs: dict[str, Any]) -> dict[str, str]:
    """Binary-mode headers as the HTTP binding writes them (§3.1.3): our encoder's view."""
    headers, _ = to_http_binary(CloudEvent(dict(BASE), None))
    for k, v in attrs.items():
        if k == "datacontenttype":
            headers["content-type"] = str(v)
        else:
            text = ("true" if v else "false") if isinstance(v, bool) else str(v)
            headers["ce-" + k] = "".join(
                c if 0x21 <= ord(c) <= 0x7E and c not in '%"' else "".join(f"%{b:02X}" for b in c.encode())
                for c in text
            )
    return headers


def kafka_headers(attrs: dict[str, Any]) -> list[tuple[str, bytes]]:
    out = []
    for k, v in {**BASE, **attrs}.items():
        text = ("true" if v else "false") if isinstance(v, bool) else str(v)
        out.append(
            ("content-type" if k == "datacontenttype" else "ce_" + k, text.encode("utf-8", "surrogatepass"))
        )
    return out


def amqp_message(
    headers: dict[str, Any], content_type: str | None = None
) -> tuple[Basic.Deliver, BasicProperties]:
    deliver = Basic.Deliver(delivery_tag=1, exchange="", routing_key="q")
    return deliver, BasicProperties(headers=headers, content_type=content_type)


def amqp_decode(props: dict[str, Any], body: bytes) -> CloudEvent:
    return message_to_event(
        AMQP_SOURCE, Basic.Deliver(delivery_tag=1, routing_key="q"), BasicProperties(**props), body
    )


# --------------------------------------------------------------------------- the specification's examples


SPEC_EXAMPLE = b"""{
    "specversion" : "1.0",
    "type" : "com.github.pull_request.opened",
    "source" : "https://github.com/cloudevents/spec/pull",
    "subject" : "123",
    "id" : "A234-1234-1234",
    "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value",
    "comexampleothervalue" : 5,
    "datacontenttype" : "text/xml",
    "data" : "<much wow=\\"xml\\"/>"
}"""

# json-format.md §3.2, with a real payload for "... base64 encoded string ..."
JSON_FORMAT_EXAMPLES = [
    b"""{"specversion" : "1.0", "type" : "com.example.someevent", "source" : "/mycontext",
    "id" : "A234-1234-1234", "time" : "2018-04-05T17:31:00Z", "comexampleextension1" : "value",
    "comexampleothervalue" : 5, "datacontenttype" : "application/vnd.apache.thrift.binary",
    "data_base64" : "Zm9vYg=="}""",
    b"""{"specversion" : "1.0", "type" : "com.example.someevent", "source" : "/mycontext",
    "id" : "B234-1234-1234", "time" : "2018-04-05T17:31:00Z", "comexampleextension1" : "value",
    "comexampleothervalue" : 5, "unsetextension": null, "datacontenttype" : "application/xml",
    "data" : "<much wow=\\"xml\\"/>"}""",
    b"""{"specversion" : "1.0", "type" : "com.example.someevent", "source" : "/mycontext",
    "subject": null, "id" : "C234-1234-1234", "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value", "comexampleothervalue" : 5, "datacontenttype" : "application/json",
    "data" : {"appinfoA" : "abc", "appinfoB" : 123, "appinfoC" : true}}""",
    b"""{"specversion" : "1.0", "type" : "com.example.someevent", "source" : "/mycontext",
    "subject": null, "id" : "D234-1234-1234", "time" : "2018-04-05T17:31:00Z",
    "comexampleextension1" : "value", "comexampleothervalue" : 5, "data" : "I'm just a string"}""",
]


def test_spec_md_example_is_accepted_as_written():
    event = from_json(SPEC_EXAMPLE)
    assert event.attributes["comexampleothervalue"] == 5
    assert event.attributes["time"] == "2018-04-05T17:31:00Z"
    assert event.data == '<much wow="xml"/>'


@pytest.mark.parametrize("raw", JSON_FORMAT_EXAMPLES, ids=["binary", "xml", "json-object", "json-string"])
def test_json_format_3_2_examples_are_accepted_and_reencoded_as_the_spec_shows(raw):
    """json-format.md §3.2: each example and its HTTP binary re-encoding."""
    event = from_json(raw)
    d = orjson.loads(raw)
    assert (
        "unsetextension" not in event.attributes and "subject" not in event.attributes
    )  # null = unset (§2.2)
    headers, body = to_http_binary(event)
    for name in ("specversion", "type", "source", "id", "time", "comexampleextension1"):
        assert headers["ce-" + name] == d[name]
    assert headers["ce-comexampleothervalue"] == "5"
    if "data_base64" in d:
        assert headers["content-type"] == "application/vnd.apache.thrift.binary" and body == b"foob"
    elif d.get("datacontenttype") == "application/xml":
        assert headers["content-type"] == "application/xml" and body == b'<much wow="xml"/>'
    elif "datacontenttype" in d:
        assert orjson.loads(body) == {"appinfoA": "abc", "appinfoB": 123, "appinfoC": True}
    else:  # the implied content type is set explicitly, the string stays a JSON string
        assert headers["content-type"] == "application/json" and body == b'"I\'m just a string"'
    (back,) = from_http(headers, body)
    assert back.data == event.data


def test_json_batch_format_4_3_example_and_the_empty_batch():
    body = b"[" + JSON_FORMAT_EXAMPLES[0] + b"," + JSON_FORMAT_EXAMPLES[2] + b"]"
    events = from_http({"Content-Type": "application/cloudevents-batch+json; charset=UTF-8"}, body)
    assert [e.id for e in events] == ["A234-1234-1234", "C234-1234-1234"]
    assert events[0].data == b"foob"
    assert from_http({"Content-Type": "application/cloudevents-batch+json"}, b"[]") == []


def test_http_binding_3_1_4_binary_example():
    headers = {
        "ce-specversion": "1.0",
        "ce-type": "com.example.someevent",
        "ce-time": "2018-04-05T03:56:24Z",
        "ce-id": "1234-1234-1234",
        "ce-source": "/mycontext/subcontext",
        "Content-Type": "application/json; charset=utf-8",
    }
    (event,) = from_http(headers, b'{\n    "x": 1\n}')
    assert event.attributes["datacontenttype"] == "application/json; charset=utf-8"
    assert event.data == {"x": 1}


def test_kafka_binding_3_2_5_binary_example_keeps_its_key_out_of_the_event():
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", b"com.example.someevent"),
        ("ce_source", b"/mycontext/subcontext"),
        ("ce_id", b"1234-1234-1234"),
        ("ce_time", b"2018-04-05T03:56:24Z"),
        ("content-type", b"application/avro"),
    ]
    event = from_kafka(b"mykey", b"\x00\x02avro", headers)
    assert event is not None and event.data == b"\x00\x02avro"
    assert event.attributes["datacontenttype"] == "application/avro"
    assert "partitionkey" not in event.attributes  # §3.1: a key mapper MUST NOT modify the event


def test_kafka_binding_3_3_4_structured_example():
    value = b"""{"specversion" : "1.0", "type" : "com.example.someevent", "source" : "/mycontext/subcontext",
    "id" : "1234-1234-1234", "time" : "2018-04-05T03:56:24Z", "datacontenttype" : "application/xml",
    "data" : "<a/>"}"""
    event = from_kafka(b"mykey", value, [("content-type", b"application/cloudevents+json; charset=UTF-8")])
    assert event is not None and event.data == "<a/>" and "partitionkey" not in event.attributes


def test_amqp_binding_3_1_4_binary_example():
    deliver, props = amqp_message(
        {
            "cloudEvents:specversion": "1.0",
            "cloudEvents:type": "com.example.someevent",
            "cloudEvents:time": "2018-04-05T03:56:24Z",
            "cloudEvents:id": "1234-1234-1234",
            "cloudEvents:source": "/mycontext/subcontext",
        },
        "application/json; charset=utf-8",
    )
    event = message_to_event(AMQP_SOURCE, deliver, props, b'{"x": 1}')
    assert event.id == "1234-1234-1234" and event.data == {"x": 1}


# --------------------------------------------------------------------------- valid values


VALID_ATTRIBUTES = [
    # spec.md "source" examples, and the JSON Schema's (formats/cloudevents.json)
    *[
        {"source": s}
        for s in (
            "https://github.com/cloudevents",
            "mailto:cncf-wg-serverless@lists.cncf.io",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "/cloudevents/spec/pull/123",
            "/sensors/tn-1234567/alerts",
            "1-555-123-4567",
            "cloudevents/spec/pull/123",
            "http://[2001:db8::1]:8080/a?b=c#d",
            "arn:aws:sqs:us-east-1:123456789012:orders",
        )
    ],
    # RFC 3339 §5.8 examples (leap seconds included), lower-case t/z (§5.6 note), 29 February
    *[
        {"time": t}
        for t in (
            "2018-04-05T17:31:00Z",
            "1985-04-12T23:20:50.52Z",
            "1996-12-19T16:39:57-08:00",
            "1990-12-31T23:59:60Z",
            "1990-12-31T15:59:60-08:00",
            "1937-01-01T12:00:27.87+00:20",
            "2018-04-05t17:31:00.123456789z",
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
        )
    ],
    # RFC 2046 media types: the JSON Schema's examples, parameters, quoted values
    *[
        {"datacontenttype": ct}
        for ct in (
            "text/xml",
            "application/json",
            "image/png",
            "multipart/form-data",
            "application/json; charset=utf-8",
            'text/plain; charset="utf-8"',
            "application/vnd.apache.thrift.binary",
            "application/cloudevents+json;charset=UTF-8",
        )
    ],
    {"dataschema": "https://example.com/schemas/order.json"},
    {"dataschema": "urn:example:order:v2"},
    {"dataschema": "https://example.com/schemas#order"},  # the JSON Schema's "format: uri"
    {"subject": "mynewfile.jpg"},
    {"count": 2147483647, "low": -2147483648, "zero": 0, "flag": True, "off": False},  # Integer, Boolean
    {"text": "Euro € 😀", "nbsp": "a\u00a0b", "zwj": "\u200d", "private": "\ue000", "empty": ""},
    {"averyveryverylongextensionname": "x"},  # (f) longer than 20: only SHOULD NOT
    {"x" * 100: "y", "0": "digits only"},
]


@pytest.mark.parametrize("attrs", VALID_ATTRIBUTES, ids=lambda a: ",".join(a)[:40])
def test_valid_attributes_are_accepted_by_every_decoder(attrs):
    d = event_dict(**attrs)
    assert from_json(orjson.dumps(d)).attributes == d
    assert from_json(orjson.dumps(d, option=orjson.OPT_INDENT_2)).attributes == d  # not canonical text
    assert from_json_dict(d).attributes == d
    if not str(d.get("datacontenttype")).startswith("application/cloudevents"):  # else: structured
        strings = {k: ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in d.items()}
        (h,) = from_http(http_headers(attrs), b"")
        assert h.attributes == strings  # binary mode carries canonical strings (Type System)
        k = from_kafka(None, None, kafka_headers(attrs))
        assert k is not None and k.attributes == strings
    props, body = event_to_message(CloudEvent(d), "binary")
    assert amqp_decode(props, body).attributes == d  # AMQP keeps native integers and booleans


def test_null_attributes_are_unset():
    """json-format.md §2.2: a null attribute MUST be treated as unset."""
    event = from_json(orjson.dumps(event_dict(subject=None, time=None, ext=None)))
    assert event.attributes == BASE


def test_duplicate_keys_inside_data_are_the_payload_s_business():
    """Only attributes must appear at most once; a JSON payload keeps its last member (RFC 8259)."""
    event = from_json(b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1,"a":2}}')
    assert event.data == {"a": 2}


# --------------------------------------------------------------------------- invalid values (c)

INVALID_ATTRIBUTES = [
    # (a) names: the whole name must be [a-z0-9]+ ("Attribute Naming Convention")
    ({"abc\n": "x"}, "invalid attribute name 'abc\\n'"),
    ({"\nabc": "x"}, "invalid attribute name"),
    ({"Abc": "x"}, "invalid attribute name 'Abc'"),
    ({"a-b": "x"}, "invalid attribute name"),
    ({"a_b": "x"}, "invalid attribute name"),
    ({"café": "x"}, "invalid attribute name"),
    ({"": "x"}, "invalid attribute name"),
    # required attributes (id, source, specversion, type: non-empty strings)
    ({"id": ""}, "'id' must be a non-empty string"),
    ({"type": ""}, "'type' must be a non-empty string"),
    ({"source": ""}, "'source' must be a non-empty string"),
    ({"specversion": "0.3"}, "unsupported specversion"),
    ({"id": 5}, "'id' must be a string"),
    # source: URI-reference (RFC 3986 §4.1)
    ({"source": "a b"}, "'source' must be a URI-reference"),
    ({"source": "http://example.com/a b"}, "'source' must be a URI-reference"),
    ({"source": "/café"}, "'source' must be a URI-reference"),
    ({"source": "http://[zz]/"}, "'source' must be a URI-reference"),
    ({"source": "/a%zz"}, "'source' must be a URI-reference"),
    ({"source": "a:b c"}, "'source' must be a URI-reference"),
    # subject: if present, a non-empty string
    ({"subject": ""}, "'subject' must be a non-empty string"),
    # dataschema: if present, a non-empty (absolute) URI
    ({"dataschema": ""}, "'dataschema' must be a non-empty absolute URI"),
    ({"dataschema": "/schemas/order"}, "'dataschema' must be a non-empty absolute URI"),
    ({"dataschema": "schema.json"}, "'dataschema' must be a non-empty absolute URI"),
    ({"dataschema": "http://exa mple.com/s"}, "'dataschema' must be a non-empty absolute URI"),
    # datacontenttype: an RFC 2046 media type
    ({"datacontenttype": 5}, "'datacontenttype' must be a string"),
    ({"datacontenttype": ""}, "'datacontenttype' must be an RFC 2046 media type"),
    ({"datacontenttype": "json"}, "'datacontenttype' must be an RFC 2046 media type"),
    ({"datacontenttype": "application/json;"}, "'datacontenttype' must be an RFC 2046 media type"),
    ({"datacontenttype": "text/plain; charset"}, "'datacontenttype' must be an RFC 2046 media type"),
    ({"datacontenttype": "a b/c"}, "'datacontenttype' must be an RFC 2046 media type"),
    # time: RFC 3339 (§5.6 date-time, with an offset, on a day that exists)
    ({"time": 5}, "'time' must be a string"),
    ({"time": "yesterday"}, "'time' must be an RFC 3339 timestamp"),
    ({"time": "2018-04-05"}, "'time' must be an RFC 3339 timestamp"),
    ({"time": "2018-04-05T17:31:00"}, "'time' must be an RFC 3339 timestamp"),
    ({"time": "2018-04-05 17:31:00Z"}, "'time' must be an RFC 3339 timestamp"),
    ({"time": "2021-02-30T00:00:00Z"}, "'time' must be an RFC 3339 timestamp"),
    ({"time": "2021-02-29T00:00:00Z"}, "'time' must be an RFC 3339 timestamp"),
    ({"time": "1900-02-29T00:00:00Z"}, "'time' must be an RFC 3339 timestamp"),
    ({"time": "2021-04-31T00:00:00Z"}, "'time' must be an RFC 3339 timestamp"),
    ({"time": "2018-04-05T24:00:00Z"}, "'time' must be an RFC 3339 timestamp"),
    ({"time": "2018-04-05T17:31:00+25:00"}, "'time' must be an RFC 3339 timestamp"),
    ({"time": "２０１８-04-05T17:31:00Z"}, "'time' must be an RFC 3339 timestamp"),
    # Integer: signed 32 bits
    ({"big": 2147483648}, "outside the CloudEvents Integer range"),
    ({"small": -2147483649}, "outside the CloudEvents Integer range"),
    # String: no controls U+0000-U+001F, U+007F-U+009F, no noncharacters
    ({"subject": "a\x00b"}, "U+0000, a control character"),
    ({"ext": "line\nbreak"}, "U+000A, a control character"),
    ({"ext": "\x7f"}, "U+007F, a control character"),
    ({"ext": "\x85"}, "U+0085, a control character"),
    ({"id": "\x9f"}, "U+009F, a control character"),
    ({"ext": "\ufffe"}, "U+FFFE, a Unicode noncharacter"),
    ({"ext": "\ufdd0"}, "U+FDD0, a Unicode noncharacter"),
    ({"ext": "\U0010ffff"}, "U+10FFFF, a Unicode noncharacter"),
]


def _id(case: tuple[dict[str, Any], str]) -> str:
    k, v = next(iter(case[0].items()))
    return f"{k!r}={v!r}"[:40]


def _as_text(name: str, value: Any, reason: str) -> str | None:
    """The refusal a binding that carries canonical strings gives (``None``: the text is valid)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return reason
    if name == "time":
        return "'time' must be an RFC 3339 timestamp"
    if name == "datacontenttype":
        return "'datacontenttype' must be an RFC 2046 media type"
    return None  # id 5 travels as "5", 2147483648 as "2147483648": valid strings


def _http_can_carry(name: str) -> bool:
    """An HTTP field name is a token, compared without case (RFC 7230 §3.2)."""
    return (
        name == name.lower()
        and bool(name)
        and all(c.isascii() and (c.isalnum() or c in "-._~") for c in name)
    )


@pytest.mark.parametrize("case", INVALID_ATTRIBUTES, ids=_id)
def test_invalid_attributes_are_refused_by_every_decoder_naming_the_rule(case):
    attrs, reason = case
    ((name, value),) = attrs.items()
    d = event_dict(**attrs)
    with pytest.raises(EventError, match=re.escape(reason)):
        from_json(orjson.dumps(d))
    with pytest.raises(EventError, match=re.escape(reason)):
        from_json_dict(d)
    text_reason = _as_text(name, value, reason)
    if text_reason is None:  # binary modes hold the canonical string, a valid one
        assert from_kafka(None, None, kafka_headers(attrs)) is not None
    else:
        if _http_can_carry(name):
            with pytest.raises(EventError, match=re.escape(text_reason)):
                from_http(http_headers(attrs), b"")
        with pytest.raises(EventError, match=re.escape(text_reason)):
            from_kafka(None, None, kafka_headers(attrs))
    if name == "datacontenttype" and not isinstance(value, str):
        return  # AMQP's content_type property is a string: nothing else can be sent
    ct = d.pop("datacontenttype", None)
    deliver, props = amqp_message({"cloudEvents:" + k: v for k, v in d.items()}, ct)
    with pytest.raises(EventError, match=re.escape(reason)):  # native types: the JSON format's reason
        message_to_event(AMQP_SOURCE, deliver, props, b"")


def test_a_lone_surrogate_is_refused():
    """Type System: surrogates only in pairs. JSON's \\ud800 alone is refused by the parser;
    a Python string holding one (from code) by the attribute check."""
    with pytest.raises(EventError, match="surrogate"):
        from_json(b'{"specversion":"1.0","id":"1","source":"/s","type":"t","x":"\\ud800"}')
    with pytest.raises(EventError, match="U\\+D800, an unpaired surrogate"):
        from_json_dict(event_dict(x="\ud800"))
    assert (
        from_json(b'{"specversion":"1.0","id":"1","source":"/s","type":"t","x":"\\ud83d\\ude00"}').get("x")
        == "😀"
    )


@pytest.mark.parametrize(
    "raw, reason",
    [
        (
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","x":1.5}',
            "'x' must be a string, integer or boolean",
        ),
        (
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","x":1.0}',
            "'x' must be a string, integer or boolean",
        ),
        (
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","x":[1]}',
            "'x' must be a string, integer or boolean",
        ),
        (
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","x":{"a":1}}',
            "'x' must be a string, integer or boolean",
        ),
        (
            b'{"specversion":1.0,"id":"1","source":"/s","type":"t"}',
            "'specversion' must be a string, got a number",
        ),
        (
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}',
            "mutually exclusive",
        ),
        (b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AA"}', "not valid base64"),
        (
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","x":99999999999999999999}',
            "outside the CloudEvents Integer range",
        ),
    ],
)
def test_json_format_2_2_type_mapping_refusals(raw, reason):
    """json-format.md §2.2: Integer is a JSON number with an integer component only."""
    with pytest.raises(EventError, match=re.escape(reason)):
        from_json(raw)


@pytest.mark.parametrize(
    "bad",
    [
        CloudEvent({**BASE, "datacontenttype": 5}, {"a": 1}),
        CloudEvent({**BASE, "abc\n": "x"}, None),
        CloudEvent({**BASE, "ext": [1]}, None),
        CloudEvent({**BASE, "ext": "\ud800"}, None),
    ],
    ids=["datacontenttype-int", "name-newline", "list-value", "surrogate"],
)
def test_encoders_refuse_an_invalid_event_with_an_event_error_never_a_crash(bad):
    """Events built by code (a python step, a mapping) are not checked on the way in: the
    binary encoders refuse what they cannot write, so the target dead-letters it."""
    for encode in (to_http_binary, to_kafka_binary, lambda e: event_to_message(e, "binary")):
        with pytest.raises(EventError):
            encode(bad)
    if "abc\n" in bad.attributes:
        with pytest.raises(EventError, match="invalid attribute name"):
            to_http_binary(bad)


def test_data_that_is_a_cloudevent_travels_in_structured_mode():
    """A receiver takes a content type starting with application/cloudevents for structured
    mode (HTTP §3, Kafka §3, AMQP §3): binary mode could not carry such data, so the
    binary encoders send these events structured."""
    inner = {**BASE, "id": "inner"}
    event = CloudEvent({**BASE, "datacontenttype": "application/cloudevents+json"}, inner)
    headers, body = to_http_binary(event)
    assert headers["content-type"].startswith("application/cloudevents+json") and "ce-id" not in headers
    assert from_http(headers, body) == [event]
    assert from_kafka(*to_kafka_binary(event)) == event
    props, body = event_to_message(event, "binary")
    assert props["content_type"] == "application/cloudevents+json" and amqp_decode(props, body) == event


# --------------------------------------------------------------------------- (b) header values


@pytest.mark.parametrize(
    "value, text",
    [
        ("Euro%20%E2%82%AC%20%F0%9F%98%80", "Euro € 😀"),  # §3.1.3.2 example
        ("Euro%20%e2%82%ac%20%f0%9f%98%80", "Euro € 😀"),  # decoding MUST accept lower case
        ("%41%42c", "ABc"),  # unnecessarily encoded: MUST be accepted
        ('"hello world"', "hello world"),  # RFC 7230 §3.2.6 quoted-string
        ('"say \\"hi\\""', 'say "hi"'),  # with backslash escapes
        ('"50%25"', "50%"),  # quotes first, then one round of percent-decoding
        ("a%2520b", "a%20b"),  # a single round
        ("  padded\t", "padded"),  # optional whitespace around the value
        ("plain space", "plain space"),  # older senders did not encode spaces
    ],
)
def test_http_3_1_3_2_header_values_are_unquoted_then_percent_decoded(value, text):
    (event,) = from_http({**http_headers({}), "ce-subject": value}, b"")
    assert event.attributes["subject"] == text


@pytest.mark.parametrize(
    "value, reason",
    [
        ("%C0%A0", "not valid UTF-8"),  # §3.1.3.2: an overlong encoding of U+0020 MUST be rejected
        ("%FF", "not valid UTF-8"),
        ("%ED%A0%80", "not valid UTF-8"),  # an encoded surrogate
        ("%E2%82", "not valid UTF-8"),  # a truncated sequence
        ("100%", "'%' not followed by two hex digits"),
        ("%zz", "'%' not followed by two hex digits"),
        ('"unterminated', "unterminated quoted string"),
        ("café", "must be US-ASCII"),
        ("%0A", "U+000A, a control character"),  # decoded, still a String
    ],
)
def test_http_3_1_3_2_invalid_header_values_are_refused(value, reason):
    with pytest.raises(EventError, match=re.escape(reason)):
        from_http({**http_headers({}), "ce-subject": value}, b"")


def test_http_3_1_3_2_encoding_follows_the_spec_example():
    event = CloudEvent({**BASE, "subject": "Euro € 😀", "q": 'say "50%"', "t": "a~b"})
    headers, _ = to_http_binary(event)
    assert headers["ce-subject"] == "Euro%20%E2%82%AC%20%F0%9F%98%80"
    assert headers["ce-q"] == "say%20%2250%25%22"
    assert headers["ce-t"] == "a~b"
    assert all(0x21 <= ord(c) <= 0x7E for v in headers.values() for c in v)


def test_http_3_1_1_ce_datacontenttype_must_not_be_present():
    with pytest.raises(EventError, match="'ce-datacontenttype' must not be present"):
        from_http({**http_headers({}), "ce-datacontenttype": "text/plain"}, b"x")


@pytest.mark.parametrize(
    "value, reason",
    [(b"caf\xe9", "not UTF-8"), (b"\xff\xfe", "not UTF-8"), (b"\xed\xa0\x80", "not UTF-8")],
)
def test_kafka_3_2_3_header_values_must_be_utf8(value, reason):
    headers = [*kafka_headers({}), ("ce_subject", value)]
    with pytest.raises(EventError, match=f"'ce_subject' is {reason}"):
        from_kafka(None, None, headers)
    with pytest.raises(EventError, match="'content-type' is not UTF-8"):
        from_kafka(None, b"x", [*kafka_headers({}), ("content-type", value)])


def test_kafka_header_values_are_taken_as_they_are():
    """Kafka has no percent-encoding: UTF-8 text arrives as it is."""
    event = from_kafka(None, None, [*kafka_headers({}), ("ce_subject", "café %41".encode())])
    assert event is not None and event.attributes["subject"] == "café %41"


# --------------------------------------------------------------------------- (d) data


@pytest.mark.parametrize("body", [b'{"a": 1}', b"\x00\xff", b"plain text"])
def test_binary_mode_without_a_content_type_has_opaque_data(body):
    """No datacontenttype: only the JSON *format* implies application/json (json-format.md
    §3.1); a binary-mode body without a content type is taken as it is, not parsed."""
    (h,) = from_http(http_headers({}), body)
    k = from_kafka(None, body, kafka_headers({}))
    a = amqp_decode({"headers": {"cloudEvents:" + n: v for n, v in BASE.items()}}, body)
    assert h.data == k.data == a.data == body  # type: ignore[union-attr]
    assert "datacontenttype" not in h.attributes


def test_bytes_without_a_content_type_round_trip_without_one():
    event = CloudEvent(dict(BASE), b"\x00\x01")
    headers, body = to_http_binary(event)
    assert "content-type" not in headers
    assert from_http(headers, body) == [event]
    key, value, kheaders = to_kafka_binary(event)
    assert from_kafka(key, value, kheaders) == event
    assert amqp_decode(*event_to_message(event, "binary")) == event


BIG = 123456789012345678901234567890


def test_integers_beyond_64_bits_stay_exact_everywhere():
    """Python holds any integer; the JSON text does: nothing becomes a float."""
    raw = orjson.dumps(event_dict()).replace(
        b"}", b',"data":{"n":' + str(BIG).encode() + b',"m":-9223372036854775809}}'
    )
    event = from_json(raw)
    assert event.data == {"n": BIG, "m": -9223372036854775809}
    assert type(event.data["n"]) is int
    assert from_json(to_json(event)) == event
    (h,) = from_http(*to_http_binary(event))
    assert h.data == event.data
    key, value, headers = to_kafka_binary(event)
    assert from_kafka(key, value, headers).data == event.data  # type: ignore[union-attr]
    assert amqp_decode(*event_to_message(event, "binary")).data == event.data
    (s,) = from_http(*to_http_structured(event))
    assert s.data == event.data
    batch = b"[" + to_json(event) + b"]"
    assert from_http({"content-type": "application/cloudevents-batch+json"}, batch)[0].data == event.data
    coder = CloudEventCoder()
    assert coder.decode(coder.encode(event)) == event


def test_a_json_content_type_with_a_body_that_is_not_json_is_refused():
    with pytest.raises(EventError, match="not valid JSON although its content type says so"):
        from_http({**http_headers({}), "content-type": "application/vnd.x+json"}, b"{nope")


def test_text_in_another_charset_stays_bytes():
    (event,) = from_http({**http_headers({}), "content-type": "text/plain; charset=iso-8859-1"}, b"caf\xe9")
    assert event.data == b"caf\xe9"
    headers, body = to_http_binary(event)
    assert body == b"caf\xe9" and headers["content-type"] == "text/plain; charset=iso-8859-1"


# --------------------------------------------------------------------------- (e) the Kafka key


def test_kafka_3_1_the_key_mapper_reads_the_event_and_never_changes_it():
    no_key = CloudEvent({**BASE, "subject": "customer-7"}, {"a": 1})
    key, value, headers = to_kafka_binary(no_key)
    assert key == b"customer-7"  # partitionkey, else subject, else id
    assert "ce_partitionkey" not in dict(headers)
    assert from_kafka(key, value, headers) == no_key.replace(datacontenttype="application/json")
    keyed = CloudEvent({**BASE, "subject": "s", "partitionkey": "pk"}, {"a": 1})
    key, value, headers = to_kafka_binary(keyed)
    assert key == b"pk" and dict(headers)["ce_partitionkey"] == b"pk"  # MUST still be included
    assert from_kafka(key, value, headers).get("partitionkey") == "pk"  # type: ignore[union-attr]
    key, value, headers = to_kafka_structured(no_key)
    assert key == b"customer-7" and from_kafka(key, value, headers) == no_key
    key, _, _ = to_kafka_binary(CloudEvent(dict(BASE)))
    assert key == BASE["id"].encode()


# --------------------------------------------------------------------------- (f) long names


def test_names_longer_than_20_characters_travel_through_every_binding():
    name = "averyveryverylongextensionname"
    event = CloudEvent({**BASE, name: "v"}, {"a": 1})
    assert from_json(to_json(event)) == event
    (h,) = from_http(*to_http_binary(event))
    assert h.attributes[name] == "v"
    assert from_kafka(*to_kafka_binary(event)).attributes[name] == "v"  # type: ignore[union-attr]
    assert amqp_decode(*event_to_message(event, "binary")).attributes[name] == "v"


# --------------------------------------------------------------------------- (g) duplicates


@pytest.mark.parametrize(
    "raw, name",
    [
        (b'{"specversion":"1.0","id":"1","source":"/s","type":"t","id":"2"}', "id"),
        (b'{"specversion":"1.0","id":"1","source":"/s","type":"t","id":"1"}', "id"),  # same value
        (b'{"id":"1","specversion":"1.0","source":"/s","type":"t","data":{},"id":"1"}', "id"),
        (b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data":2}', "data"),
        (
            b'{\n "specversion": "1.0",\n "id": "1",\n "source": "/s",\n "type": "t",\n "x": 1,\n "x": 1\n}',
            "x",
        ),
        (b'{"specversion":"1.0","id":"1","source":"/s","type":"t","\\u0069d":"2"}', "id"),  # escaped
    ],
)
def test_an_attribute_appearing_twice_is_refused(raw, name):
    """spec.md, Context Attributes: each attribute at most once; JSON would keep the last."""
    with pytest.raises(EventError, match=f"'{name}' appears more than once"):
        from_json(raw)


def test_duplicates_are_refused_in_batches_and_binary_headers():
    good = orjson.dumps(event_dict())
    bad = b'{"specversion":"1.0","id":"1","source":"/s","type":"t","type":"u"}'
    with pytest.raises(EventError, match="batch item 2: attribute 'type' appears more than once"):
        from_http({"content-type": "application/cloudevents-batch+json"}, b"[" + good + b"," + bad + b"]")
    with pytest.raises(EventError, match="'ce-id' appears more than once"):
        from_http({**http_headers({}), "CE-ID": "other"}, b"")
    with pytest.raises(EventError, match="'ce_id' appears more than once"):
        from_kafka(None, None, [*kafka_headers({}), ("ce_id", b"other")])
    with pytest.raises(EventError, match="'content-type' appears more than once"):
        from_kafka(None, b"x", [*kafka_headers({}), ("content-type", b"a/b"), ("content-type", b"c/d")])
    deliver, props = amqp_message({**{"cloudEvents:" + k: v for k, v in BASE.items()}, "cloudEvents_id": "2"})
    with pytest.raises(EventError, match="'id' appears in two headers"):
        message_to_event(AMQP_SOURCE, deliver, props, b"")


# --------------------------------------------------------------------------- round trips with the SDK

NAMES = st.from_regex(r"[a-z0-9]{1,30}", fullmatch=True).filter(
    lambda n: (
        n
        not in (
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "dataschema",
            "data",
            "partitionkey",
        )
    )
)
STRINGS = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn")), min_size=1, max_size=12)
VALUES = STRINGS | st.integers(-(2**31), 2**31 - 1) | st.booleans()
TIMES = st.datetimes(
    min_value=dt.datetime(1970, 1, 1),
    max_value=dt.datetime(2100, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-8))]),
).map(lambda t: t.isoformat().replace("+00:00", "Z"))
JSON_DATA = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | STRINGS,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(STRINGS, kids, max_size=3),
    max_leaves=8,
)
# (datacontenttype, data) pairs a binding can carry without changing them
PAYLOADS = st.one_of(
    st.tuples(st.just("application/json"), st.dictionaries(STRINGS, JSON_DATA, min_size=1, max_size=4)),
    st.tuples(st.just("text/plain; charset=utf-8"), STRINGS),
    st.tuples(st.just("application/octet-stream"), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just(None), st.none()),
)


@st.composite
def events(draw: Any) -> CloudEvent:
    attrs: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(STRINGS),
        "source": draw(
            st.sampled_from(["/mycontext", "https://github.com/cloudevents", "urn:x:y", "1-555-123-4567"])
        ),
        "type": draw(STRINGS),
    }
    if draw(st.booleans()):
        attrs["subject"] = draw(STRINGS)
    if draw(st.booleans()):
        attrs["time"] = draw(TIMES)
    if draw(st.booleans()):
        attrs["dataschema"] = "https://example.com/schema#v1"
    attrs.update(draw(st.dictionaries(NAMES, VALUES, max_size=3)))
    ct, data = draw(PAYLOADS)
    if ct is not None:
        attrs["datacontenttype"] = ct
    return CloudEvent(attrs, data)


def _canonical(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes as canonical strings; time as an instant (the SDK keeps a datetime)."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if k == "time":
            out[k] = (
                v
                if isinstance(v, dt.datetime)
                else dt.datetime.fromisoformat(str(v).upper().replace("Z", "+00:00"))
            )
        elif isinstance(v, bool):
            out[k] = "true" if v else "false"
        else:
            out[k] = str(v)
    return out


def _to_sdk(event: CloudEvent, *, binary: bool = False) -> SdkEvent:
    attrs = dict(event.attributes)
    if binary:  # the SDK writes a boolean as str(True) = "True", not the canonical "true"
        attrs = {k: (("true" if v else "false") if isinstance(v, bool) else v) for k, v in attrs.items()}
    if "time" in attrs:
        attrs["time"] = dt.datetime.fromisoformat(attrs["time"].replace("Z", "+00:00"))
    return SdkEvent(attributes=attrs, data=event.data)


def _same_data(ours: Any, sdk: Any) -> bool:
    """The SDK hands back text for any UTF-8 body it does not read as JSON."""
    if isinstance(ours, bytes) and isinstance(sdk, str):
        return ours == sdk.encode()
    return ours == sdk


def _sdk_sees(event: CloudEvent, sdk: Any, *, typed: bool, binary: bool, key: bytes | None = None) -> None:
    """What the SDK decoded from our message is ``event``: same attributes, same data."""
    got = dict(sdk.get_attributes())
    if "time" not in event.attributes:
        got.pop("time")  # the SDK's event class stamps a time on every event it builds
    if key is not None and "partitionkey" not in event.attributes and "partitionkey" in got:
        # The SDK copies the record key into partitionkey, which Kafka binding §3.1 forbids;
        # the key is the event's subject or id (our key mapper), nothing Meshline added.
        assert got.pop("partitionkey") == key.decode()
    want = dict(event.attributes)
    if binary and _implied_json(event):
        want["datacontenttype"] = "application/json"  # json-format.md §3.1.2: the implied type, explicit
    if typed:  # native integers and booleans survive the format
        assert {k: v for k, v in got.items() if k != "time"} == {k: v for k, v in want.items() if k != "time"}
    assert _canonical(got) == _canonical(want)
    assert _same_data(event.data, sdk.get_data())


def _we_see(sdk: SdkEvent, ours: CloudEvent, *, typed: bool) -> None:
    """What we decoded from the SDK's message is its event: same attributes, same data."""
    want = dict(sdk.get_attributes())
    if typed:
        assert {k: v for k, v in ours.attributes.items() if k != "time"} == {
            k: v for k, v in want.items() if k != "time"
        }
    assert _canonical(ours.attributes) == _canonical(want)
    assert _same_data(ours.data, sdk.get_data())


SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


@SETTINGS
@given(events())
def test_http_binary_both_ways_with_the_sdk(event):
    headers, body = to_http_binary(event)
    msg = sdk_http.HTTPMessage(headers=headers, body=body)
    _sdk_sees(event, sdk_http.from_http(msg, FMT), typed=False, binary=True)
    sdk = _to_sdk(event, binary=True)
    out = sdk_http.to_binary(sdk, FMT)
    (ours,) = from_http(out.headers, out.body)
    _we_see(sdk, ours, typed=False)


@SETTINGS
@given(events())
def test_http_structured_both_ways_with_the_sdk(event):
    headers, body = to_http_structured(event)
    msg = sdk_http.HTTPMessage(headers=headers, body=body)
    _sdk_sees(event, sdk_http.from_http(msg, FMT), typed=True, binary=False)
    assert from_http(headers, body) == [event]
    sdk = _to_sdk(event)
    out = sdk_http.to_structured(sdk, FMT)
    (ours,) = from_http(out.headers, out.body)
    _we_see(sdk, ours, typed=True)


@SETTINGS
@given(st.lists(events(), max_size=4))
def test_http_batch_both_ways_with_the_sdk_format(batch):
    """The SDK has no batch API: a batch is an array of its JSON format (json-format.md §4)."""
    body = b"[" + b",".join(to_json(e) for e in batch) + b"]"
    assert from_http({"content-type": "application/cloudevents-batch+json"}, body) == batch
    for event, item in zip(batch, orjson.loads(body), strict=True):
        _sdk_sees(event, FMT.read(None, orjson.dumps(item)), typed=True, binary=False)
    sdks = [_to_sdk(e) for e in batch]
    sdk_body = b"[" + b",".join(FMT.write(s) for s in sdks) + b"]"
    ours = from_http({"Content-Type": "application/cloudevents-batch+json"}, sdk_body)
    for sdk, event in zip(sdks, ours, strict=True):
        _we_see(sdk, event, typed=True)


def test_http_with_the_older_sdk_api():
    """``cloudevents.v1`` (``conversion.to_binary``/``to_structured``, ``http.from_http``).

    That API predates percent-encoding (its values here are ASCII) and sends JSON data in
    binary mode without a content type unless the event names one.
    """
    event = CloudEvent(
        {**BASE, "subject": "customer-7", "time": "2018-04-05T17:31:00Z", "n": "5"}, {"a": [1, 2]}
    )
    for encode in (to_http_binary, to_http_structured):
        headers, body = encode(event)
        sdk = sdk_v1_http.from_http(headers, body)
        assert sdk["subject"] == "customer-7" and sdk["n"] == "5" and sdk.data == {"a": [1, 2]}
    attrs = {k: v for k, v in event.attributes.items() if k != "specversion"}
    sdk = sdk_v1_http.CloudEvent({**attrs, "datacontenttype": "application/json"}, {"a": [1, 2]})
    for headers, body in (sdk_v1_conversion.to_binary(sdk), sdk_v1_conversion.to_structured(sdk)):
        (ours,) = from_http({k: str(v) for k, v in headers.items()}, body)
        assert ours == CloudEvent({**event.attributes, "datacontenttype": "application/json"}, {"a": [1, 2]})
    headers, body = sdk_v1_conversion.to_binary(sdk_v1_http.CloudEvent(attrs, {"a": [1, 2]}))
    (ours,) = from_http({k: str(v) for k, v in headers.items()}, body)
    assert "content-type" not in headers and ours.data == b'{"a": [1, 2]}'  # (d): opaque, not guessed


@SETTINGS
@given(events())
def test_kafka_binary_both_ways_with_the_sdk(event):
    key, value, headers = to_kafka_binary(event)
    msg = sdk_kafka.KafkaMessage(headers=dict(headers), key=key, value=value)
    _sdk_sees(event, sdk_kafka.from_kafka(msg, FMT), typed=False, binary=True, key=key)
    back = from_kafka(key, value, headers)
    assert back is not None and back.data == event.data
    implied = {"datacontenttype": "application/json"} if _implied_json(event) else {}
    assert back.attributes == {**_strings(event.attributes), **implied}  # and no partitionkey added
    sdk = _to_sdk(event, binary=True)
    out = sdk_kafka.to_binary(sdk, FMT)
    ours = from_kafka(out.key, out.value, list(out.headers.items()))
    assert ours is not None
    _we_see(sdk, ours, typed=False)


@SETTINGS
@given(events())
def test_kafka_structured_both_ways_with_the_sdk(event):
    key, value, headers = to_kafka_structured(event)
    msg = sdk_kafka.KafkaMessage(headers=dict(headers), key=key, value=value)
    _sdk_sees(event, sdk_kafka.from_kafka(msg, FMT), typed=True, binary=False, key=key)
    assert from_kafka(key, value, headers) == event
    sdk = _to_sdk(event)
    out = sdk_kafka.to_structured(sdk, FMT)
    ours = from_kafka(out.key, out.value, list(out.headers.items()))
    assert ours is not None
    _we_see(sdk, ours, typed=True)


def _amqp_to_sdk(props: dict[str, Any], body: bytes) -> sdk_amqp.AMQPMessage:
    properties = {"content-type": props["content_type"]} if "content_type" in props else {}
    return sdk_amqp.AMQPMessage(
        properties=properties, application_properties=props.get("headers", {}), application_data=body
    )


def _sdk_to_amqp(msg: sdk_amqp.AMQPMessage) -> dict[str, Any]:
    headers = dict(msg.application_properties)
    for k, v in headers.items():
        if k.endswith("time") and isinstance(v, int):  # an AMQP timestamp (ms): pika's datetime
            headers[k] = dt.datetime.fromtimestamp(v / 1000, dt.UTC)
    props: dict[str, Any] = {"headers": headers}
    if msg.properties.get("content-type"):
        props["content_type"] = msg.properties["content-type"]
    return props


@SETTINGS
@given(events())
def test_amqp_binary_and_structured_both_ways_with_the_sdk(event):
    for mode in ("binary", "structured"):
        props, body = event_to_message(event, mode)
        _sdk_sees(
            event, sdk_amqp.from_amqp(_amqp_to_sdk(props, body), FMT), typed=True, binary=mode == "binary"
        )
        implied = {"datacontenttype": "application/json"} if _implied_json(event) and mode == "binary" else {}
        assert amqp_decode(props, body) == CloudEvent({**event.attributes, **implied}, event.data)
    sdk = _to_sdk(event)
    t = sdk.get_attributes()["time"]  # an AMQP timestamp counts milliseconds
    sdk = SdkEvent(
        {**sdk.get_attributes(), "time": t.replace(microsecond=t.microsecond // 1000 * 1000)}, sdk.get_data()
    )
    for out in (sdk_amqp.to_binary(sdk, FMT), sdk_amqp.to_structured(sdk, FMT)):
        _we_see(sdk, amqp_decode(_sdk_to_amqp(out), out.application_data), typed=True)


def _strings(attrs: dict[str, Any]) -> dict[str, str]:
    return {k: ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in attrs.items()}


def _implied_json(event: CloudEvent) -> bool:
    return (
        event.data is not None
        and "datacontenttype" not in event.attributes
        and not isinstance(event.data, bytes)
    )


# --------------------------------------------------------------------------- through a real source

PIPELINE = """
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: conformance}
spec:
  sources:
    - {name: in, type: file, config: {path: "IN"}}
  targets:
    - {name: out, type: file, config: {path: "OUT/ok/"}}
    - {name: dlq, type: file, config: {path: "OUT/dead/"}}
  triggers:
    - {name: all, target: out}
  deadLetter: dlq
"""


def _lines(folder: Path) -> list[dict[str, Any]]:
    return [
        orjson.loads(line) for f in sorted(folder.rglob("*.jsonl")) for line in f.read_bytes().splitlines()
    ]


def test_the_file_source_dead_letters_each_invalid_event_and_delivers_the_valid_ones_unchanged(
    tmp_path: Path,
):
    """Every case above, as lines of a JSONL file read by the real ``file`` source."""
    valid = [
        orjson.dumps(event_dict(id=f"ok-{i}", **a, data={"i": i})) for i, a in enumerate(VALID_ATTRIBUTES)
    ]
    valid += [raw.replace(b"\n", b" ") for raw in (SPEC_EXAMPLE, *JSON_FORMAT_EXAMPLES)]
    invalid = [(orjson.dumps(event_dict(**a)), reason) for a, reason in INVALID_ATTRIBUTES]
    invalid += [
        (
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","id":"2"}',
            "attribute 'id' appears more than once",
        ),
        (
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","x":18446744073709551616}',
            "outside the CloudEvents Integer range",
        ),
    ]
    lines = [*valid, *(raw for raw, _ in invalid)]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    text = PIPELINE.replace("IN", str(tmp_path / "in.jsonl")).replace("OUT", str(tmp_path / "out"))
    (integration,) = load_text(text, "conformance.yaml").integrations
    p = beam.Pipeline(runner=in_process_runner())
    build_pipeline(integration, p)
    p.run().wait_until_finish()

    def key(d: dict[str, Any]) -> bytes:
        return orjson.dumps(d, option=orjson.OPT_SORT_KEYS)

    delivered = _lines(tmp_path / "out" / "ok")
    want = [{k: v for k, v in orjson.loads(raw).items() if v is not None} for raw in valid]
    assert sorted(delivered, key=key) == sorted(want, key=key)  # unchanged (a null attribute is unset)
    dead = {int(d["id"].rsplit(":", 1)[1]): d for d in _lines(tmp_path / "out" / "dead")}
    assert len(dead) == len(invalid)
    for n, (raw, reason) in enumerate(invalid, len(valid) + 1):
        letter = dead[n]
        assert letter["meshlineerrorstage"] == "decode"
        assert reason in letter["meshlineerror"], (raw, letter["meshlineerror"])
        assert letter["data"] == raw.decode()  # the raw line, for whoever repairs it
        from_json(orjson.dumps(letter))  # a dead letter is itself a valid CloudEvent


def test_webhook_door_refuses_invalid_events_with_the_reason():
    """The webhook source turns EventError into 400 with this text (connectors/http/source.py)."""
    from meshline.connectors.http.source import request_to_events

    with pytest.raises(EventError, match="'time' must be an RFC 3339 timestamp"):
        request_to_events({**http_headers({}), "ce-time": "yesterday"}, b"", source="http://x/")
    (ok,) = request_to_events(http_headers({"time": "2018-04-05T17:31:00Z"}), b"", source="http://x/")
    assert ok.attributes["time"] == "2018-04-05T17:31:00Z"


def test_a_dead_letter_reason_with_newlines_is_still_a_valid_string():
    from meshline.events import dead_letter

    letter = dead_letter(CloudEvent(dict(BASE)), ValueError("line one\nline two\x00"), "transform")
    assert letter.attributes["meshlineerror"] == "ValueError: line one line two\ufffd"
    assert from_json(to_json(letter)) == letter
