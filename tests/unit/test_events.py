"""The CloudEvent type, its coder, the JSON format and the HTTP/Kafka bindings.

Bindings are checked against the ``cloudevents`` SDK as an independent
implementation: what we write, it reads, and the other way round.
"""

from __future__ import annotations

import pickle

import orjson
import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from meshline.bindings import (
    from_http,
    from_kafka,
    to_http_binary,
    to_http_structured,
    to_kafka_binary,
    to_kafka_structured,
)
from meshline.coder import CloudEventCoder
from meshline.errors import EventError
from meshline.events import CloudEvent, EventBatch, dead_letter, from_json, from_json_dict, to_json

EVENT = CloudEvent(
    {
        "specversion": "1.0",
        "id": "A-1",
        "source": "https://shop.example.com/orders",
        "type": "com.example.order.created",
        "subject": "customer 7 — café",
        "datacontenttype": "application/json",
        "region": "eu",
        "priority": 3,
        "urgent": True,
    },
    {"amount": "150", "note": "naïve ☕", "items": [1, 2.5, None]},
)


def test_json_round_trip_keeps_unicode_extensions_and_data():
    raw = to_json(EVENT)
    assert from_json(raw) == EVENT
    assert "naïve ☕" in raw.decode("utf-8")


def test_binary_data_uses_data_base64_both_ways():
    e = CloudEvent.create(id="1", source="s", type="t", data=b"\x00\xffbin")
    d = orjson.loads(to_json(e))
    assert d["data_base64"] == "AP9iaW4=" and "data" not in d
    assert from_json(to_json(e)).data == b"\x00\xffbin"


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"{", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (b'{"id":"1","source":"s","type":"t"}', "specversion"),
        (b'{"specversion":"1.0","source":"s","type":"t"}', "'id'"),
        (b'{"specversion":"0.3","id":"1","source":"s","type":"t"}', "unsupported specversion"),
        (b'{"specversion":"1.0","id":"1","source":"s","type":"t","Bad-Name":"x"}', "invalid attribute name"),
        (b'{"specversion":"1.0","id":"1","source":"s","type":"t","x":{"a":1}}', "must be a string"),
        (b'{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"!!"}', "base64"),
    ],
)
def test_invalid_events_say_what_is_wrong(raw, message):
    with pytest.raises(EventError, match=message):
        from_json(raw)


def test_coder_round_trip_and_determinism():
    coder = CloudEventCoder()
    assert coder.is_deterministic()
    assert coder.decode(coder.encode(EVENT)) == EVENT
    shuffled = CloudEvent(dict(reversed(list(EVENT.attributes.items()))), dict(reversed(EVENT.data.items())))
    assert coder.encode(shuffled) == coder.encode(EVENT)
    for data in (None, b"\x00\x01", "text", 5, [1, {"b": 2, "a": 1}], {"huge": 2**80}):
        e = CloudEvent.create(id="1", source="s", type="t", data=data)
        assert coder.decode(coder.encode(e)) == e


def test_coder_round_trips_a_batch_of_events():
    coder = CloudEventCoder()
    batch = EventBatch(
        [
            EVENT,
            CloudEvent.create(id="2", source="s", type="t", data=b"\x00"),
            CloudEvent.create(id="3", source="s", type="t", data={"huge": 2**80}),
        ]
    )
    back = coder.decode(coder.encode(batch))
    assert type(back) is EventBatch and list(back) == list(batch)
    assert coder.decode(coder.encode(EventBatch())) == EventBatch()
    assert (
        pickle.loads(pickle.dumps(batch)) == batch and type(pickle.loads(pickle.dumps(batch))) is EventBatch
    )


def test_beam_uses_the_coder_for_the_type():
    from apache_beam import coders

    assert isinstance(coders.registry.get_coder(CloudEvent), CloudEventCoder)


def test_event_pickles():
    assert pickle.loads(pickle.dumps(EVENT)) == EVENT


def test_dead_letter_adds_the_four_extensions_and_truncates():
    dl = dead_letter(EVENT, ValueError("x" * 5000), "transform", "big", "normalize")
    assert dl.data == EVENT.data
    assert dl.attributes["meshlineerrorstage"] == "transform"
    assert dl.attributes["meshlinetrigger"] == "big"
    assert dl.attributes["meshlinestep"] == "normalize"
    assert dl.attributes["meshlineerror"].startswith("ValueError: xxx")
    assert len(dl.attributes["meshlineerror"].encode()) <= 1024
    assert "meshlineerror" not in EVENT.attributes  # the original is untouched


# --------------------------------------------------------------------------- HTTP binding


def _sdk_event() -> SdkEvent:
    return SdkEvent(
        attributes={k: v for k, v in EVENT.attributes.items() if k != "specversion"}, data=EVENT.data
    )


def test_http_binary_is_read_by_the_sdk():
    headers, body = to_http_binary(EVENT)
    sdk = ce_http.from_http(ce_http.HTTPMessage(headers=headers, body=body), JSONFormat())
    assert sdk.get_id() == "A-1"
    assert sdk.get_subject() == "customer 7 — café"
    assert sdk.get_extension("region") == "eu"
    assert sdk.get_data() == EVENT.data


def test_http_binary_from_the_sdk_is_read_by_us():
    msg = ce_http.to_binary(_sdk_event(), JSONFormat())
    (event,) = from_http(msg.headers, msg.body)
    assert event.attributes["subject"] == "customer 7 — café"
    assert event.attributes["region"] == "eu"
    assert event.data == EVENT.data


def test_http_structured_both_ways():
    headers, body = to_http_structured(EVENT)
    sdk = ce_http.from_http(ce_http.HTTPMessage(headers=headers, body=body), JSONFormat())
    assert sdk.get_data() == EVENT.data
    msg = ce_http.to_structured(_sdk_event(), JSONFormat())
    (event,) = from_http(msg.headers, msg.body)
    assert event.data == EVENT.data and event.attributes["id"] == "A-1"


def test_http_batch_and_not_a_cloudevent():
    body = orjson.dumps([EVENT.to_dict(), EVENT.replace(id="A-2").to_dict()])
    events = from_http({"Content-Type": "application/cloudevents-batch+json"}, body)
    assert [e.id for e in events] == ["A-1", "A-2"]
    assert from_http({"content-type": "application/json"}, b"{}") is None
    with pytest.raises(EventError):
        from_http({"ce-specversion": "1.0", "ce-id": "1"}, b"")


# --------------------------------------------------------------------------- Kafka binding


def test_kafka_binary_is_read_by_the_sdk():
    key, value, headers = to_kafka_binary(EVENT)
    assert key == "customer 7 — café".encode()
    sdk = ce_kafka.from_kafka(
        ce_kafka.KafkaMessage(headers=dict(headers), key=key, value=value), JSONFormat()
    )
    assert sdk.get_type() == "com.example.order.created"
    assert sdk.get_data() == EVENT.data


def test_kafka_binary_from_the_sdk_is_read_by_us():
    msg = ce_kafka.to_binary(_sdk_event(), JSONFormat())
    event = from_kafka(msg.key, msg.value, list(msg.headers.items()))
    assert event is not None
    assert event.attributes["region"] == "eu" and event.data == EVENT.data


def test_kafka_structured_and_plain_records():
    key, value, headers = to_kafka_structured(EVENT, key_attribute="region")
    assert key == b"eu"
    event = from_kafka(key, value, headers)
    assert event == EVENT
    assert from_kafka(b"k", b'{"plain": true}', []) is None


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_decoder(raw):
    try:
        from_json(raw)
    except EventError:
        pass


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["specversion", "id", "source", "type", "data", "x", "data_base64"]), JSON
    )
)
def test_random_dicts_become_events_or_event_errors(d):
    try:
        e = from_json_dict(d)
    except EventError:
        return
    assert from_json(to_json(e)) == e


# Extension names; a random name may hit a context attribute with a type of its own (`time` is a
# Timestamp, `dataschema` a URI: a string value there is not an event), so those are left out.
_TYPED = {"specversion", "id", "source", "type", "time", "dataschema", "datacontenttype", "data"}
_EXTENSION = st.sampled_from(["partitionkey", "subject", "region"]) | st.text(
    "abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10
).filter(lambda name: name not in _TYPED)
# Valid attribute values (Type System): strings without controls, surrogates or
# noncharacters (non-empty, as subject must be), 32-bit integers, booleans.
_STRING = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn")), min_size=1, max_size=8)
_ATTR_VALUE = _STRING | st.integers(-(2**31), 2**31 - 1) | st.booleans()


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(_EXTENSION, _ATTR_VALUE, max_size=4),
    st.sampled_from([None, "application/json", "text/plain", "application/xml"]),
    JSON | st.binary(max_size=8),
    st.sampled_from([None, "id", "region"]),
)
def test_kafka_binary_records_follow_the_binding(extensions, content_type, data, key_attribute):
    """Every attribute is a header (``ce_`` + name; datacontenttype is content-type), JSON data
    without datacontenttype gets application/json (JSON format §3.1.2) and bytes get none,
    the value is the data as encoded, the key is the key attribute or else partitionkey,
    subject, id."""
    attrs = {"specversion": "1.0", "id": "i-1", "source": "/s", "type": "t", **extensions}
    if content_type is not None:
        attrs["datacontenttype"] = content_type
    if isinstance(data, str) and content_type in (None, "application/json"):
        data = {"text": data}  # a string in a JSON event is JSON text; covered by the cases above
    event = CloudEvent(attrs, data)

    def text(v: object) -> bytes:
        return (("true" if v else "false") if isinstance(v, bool) else str(v)).encode()

    expected = [("content-type" if k == "datacontenttype" else f"ce_{k}", text(v)) for k, v in attrs.items()]
    if data is not None and content_type is None and not isinstance(data, bytes):
        expected.append(("content-type", b"application/json"))
    if key_attribute is None:
        want_key = attrs.get("partitionkey") or attrs.get("subject") or attrs["id"]
    else:
        want_key = attrs.get(key_attribute)
    key, value, headers = to_kafka_binary(event, key_attribute)
    assert headers == expected
    assert key == (None if want_key is None else text(want_key))
    if data is None:
        assert value == b""
    elif isinstance(data, bytes):
        assert value == data
    elif isinstance(data, str):
        assert value == data.encode()
    else:
        assert orjson.loads(value) == data
    # What a consumer reads back (from_kafka), where the event is consistent with its type:
    if content_type in (None, "application/json") and not isinstance(data, (bytes, str)):
        read = data
    elif content_type is None and isinstance(data, bytes):
        read = data or None  # an empty body is no data
    elif content_type == "text/plain" and isinstance(data, str):
        read = data or None
    elif content_type == "application/xml" and isinstance(data, str):
        read = data or None  # XML in UTF-8 is read as text, like text/*
    else:
        return
    back = from_kafka(key, value, headers)
    assert back is not None and back.data == read


def test_the_json_form_is_computed_once_and_equals_to_dict() -> None:
    raw = b'{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":null,"data":{"a":1.0}}'
    event = from_json(raw)
    assert (
        event.json_form()
        == event.to_dict()
        == {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": {"a": 1.0}}
    )  # the null attribute is absent
    assert event.json_form() is event.json_form()
    assert to_json(event) == orjson.dumps(event.to_dict())
    no_data = from_json(b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":null}')
    assert no_data.json_form() == {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
