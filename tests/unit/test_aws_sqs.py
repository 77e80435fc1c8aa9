"""aws.sqs message ↔ CloudEvent mapping, pure logic (no server)."""

from __future__ import annotations

import base64

import orjson
import pytest

from meshline.config import parse_config
from meshline.connectors.aws.sqs import SqsSourceConfig, convert_sqs, message_to_event
from meshline.connectors.aws.sqs_target import MessageTooLarge, _fifo_fields, encode_message
from meshline.errors import ConfigError, EventError
from meshline.events import CloudEvent

ARN = "arn:aws:sqs:us-east-1:123456789012:orders"


def _msg(body: str, attributes: dict[str, str] | None = None, **system: str) -> dict:
    return {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": body,
        "Attributes": {"SentTimestamp": "1764064800123", **system},
        "MessageAttributes": {
            k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()
        },
    }


def test_a_plain_message_is_wrapped_per_the_spec():
    e = message_to_event(ARN, _msg('{"amount": 5}', {"Origin": "shop", "bad.name": "x"}))
    assert e.attributes == {
        "specversion": "1.0",
        "id": "m-1",
        "source": ARN,
        "type": "com.amazon.sqs.message",
        "time": "2025-11-25T10:00:00.123Z",
        "origin": "shop",
    }
    assert e.data == {"amount": 5}


def test_text_bodies_stay_text_and_fifo_groups_are_kept():
    e = message_to_event(ARN, _msg("hello, not JSON", MessageGroupId="g1"))
    assert e.data == "hello, not JSON" and e.attributes["messagegroupid"] == "g1"


def test_binary_attributes_become_base64_extensions():
    m = _msg("{}")
    m["MessageAttributes"]["blob"] = {"DataType": "Binary", "BinaryValue": b"\x00\x01"}
    assert message_to_event(ARN, m).attributes["blob"] == base64.b64encode(b"\x00\x01").decode()


def test_cloudevents_pass_through_structured_and_binary():
    ce = {"specversion": "1.0", "id": "x", "source": "/s", "type": "t", "data": {"a": 1}}
    assert message_to_event(ARN, _msg(orjson.dumps(ce).decode())) == CloudEvent(
        {k: v for k, v in ce.items() if k != "data"}, {"a": 1}
    )
    binary = _msg(
        "5", {"ce-specversion": "1.0", "ce-id": "y", "ce-source": "/s", "ce-type": "t", "CE_Extra": "e"}
    )
    e = message_to_event(ARN, binary)
    assert (e.id, e.data, e.attributes["extra"]) == ("y", 5, "e")


@pytest.mark.parametrize(
    "body, attributes, error",
    [
        ('{"specversion": "1.0", "id": "x"}', {}, "missing required attribute 'source'"),
        ("{not json", {"content-type": "application/cloudevents+json"}, "not valid JSON"),
        (
            "{oops",
            {
                "ce-specversion": "1.0",
                "ce-id": "a",
                "ce-source": "/s",
                "ce-type": "t",
                "content-type": "application/json",
            },
            "not valid JSON",
        ),
    ],
)
def test_broken_cloudevents_are_decode_failures(body, attributes, error):
    with pytest.raises(EventError, match=error):
        message_to_event(ARN, _msg(body, attributes))
    (pulled,) = convert_sqs(ARN, _msg(body, attributes))
    assert error in (pulled.error or "") and pulled.event.data == body and pulled.ack_id == "r-1"


def _ev(id_: str, data: object, **attrs: object) -> CloudEvent:
    return CloudEvent({"specversion": "1.0", "id": id_, "source": "/s", "type": "t", **attrs}, data)


EVENTS = [
    _ev("1", {"a": [1]}, subject="x", n=3),
    _ev("2", "hi", datacontenttype="text/plain"),
    _ev("3", b"\x00\xff"),
    _ev("4", None),
    _ev("5", 1, empty=""),
    _ev("6", 1, **{f"e{i}": i for i in range(9)}),
    _ev("7", "json string", flag=True),
]


@pytest.mark.parametrize("mode", ["binary", "structured"])
@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.id)
def test_what_the_target_sends_the_source_reads_back(mode, event):
    entry, _ = encode_message(event, mode, 262_144)
    message = {
        "MessageId": "m",
        "ReceiptHandle": "r",
        "Body": entry["MessageBody"],
        "MessageAttributes": entry["MessageAttributes"],
    }
    back = message_to_event(ARN, message)
    expected = dict(event.attributes)
    if entry["MessageAttributes"].get("ce-id"):  # binary mode: attribute values travel as strings
        expected = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in expected.items()}
    assert ("ce-id" in entry["MessageAttributes"]) == (mode == "binary" and event.id in ("1", "2", "7"))
    assert (back.attributes, back.data) == (expected, event.data)


def test_binary_mode_falls_back_to_structured_when_sqs_cannot_carry_it():
    for event in EVENTS[2:6]:  # bytes, no data, an empty value, more than 10 attributes
        entry, _ = encode_message(event, "binary", 262_144)
        assert entry["MessageAttributes"] == {
            "content-type": {"DataType": "String", "StringValue": "application/cloudevents+json"}
        }
    entry, size = encode_message(EVENTS[0], "binary", 262_144)
    assert orjson.loads(entry["MessageBody"]) == {"a": [1]}
    assert entry["MessageAttributes"]["ce-n"] == {"DataType": "String", "StringValue": "3"}
    assert size == len(entry["MessageBody"]) + sum(
        len(k) + len("String") + len(v["StringValue"]) for k, v in entry["MessageAttributes"].items()
    )


def test_too_large_events_are_refused_with_their_size():
    event = CloudEvent({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}, "x" * 300_000)
    with pytest.raises(
        MessageTooLarge, match=r"message of 3000\d\d bytes exceeds the SQS limit of 262144 bytes"
    ):
        encode_message(event, "binary", 262_144)


def test_fifo_group_and_deduplication_ids():
    e = EVENTS[0]
    fields = _fifo_fields(e, None)
    assert fields["MessageGroupId"] == "/s"  # no messagegroupid: the source
    assert _fifo_fields(e, "subject")["MessageGroupId"] == "x"
    assert (
        fields["MessageDeduplicationId"]
        == _fifo_fields(e.replace(data={"other": 1}), None)["MessageDeduplicationId"]
    )
    assert fields["MessageDeduplicationId"] != _fifo_fields(e.replace(id="2"), None)["MessageDeduplicationId"]
    assert len(fields["MessageDeduplicationId"]) == 64


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="wait_time: SQS long polling waits at most 20s"):
        parse_config(SqsSourceConfig, {"queue_url": "https://q", "wait_time": "30s"})
    with pytest.raises(ConfigError, match="access_key_id and secret_access_key: set both or neither"):
        parse_config(SqsSourceConfig, {"queue_url": "https://q", "access_key_id": "AKIA"})
    c = parse_config(SqsSourceConfig, {"queue_url": "https://q", "wait_time": "20s", "idle_timeout": "3s"})
    assert c.effective_wait() == 3


def test_secrets_are_not_in_the_config_repr():
    c = parse_config(
        SqsSourceConfig,
        {"queue_url": "https://q", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t"},
    )
    assert "s3cr3t" not in repr(c) and "AKIAEXAMPLE" not in repr(c)


def test_an_idle_pull_waits_through_receives_that_come_back_empty():
    """Each background receive long-polls; one whose poll runs out comes back empty. A pull waits
    on for its whole timeout (an idle source's one long wait), and returns what comes next."""
    import threading
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from meshline.connectors.aws.reader import SqsReader

    calls = []

    def receive():
        calls.append(1)
        if len(calls) <= 3:
            return []  # long polls that ran out
        return [{"ReceiptHandle": "r1", "Body": "{}"}]

    r = SqsReader.__new__(SqsReader)  # no AWS client: only the receiving side
    r._receivers, r._buffer, r._inflight = 1, deque(), set()
    r._pool = ThreadPoolExecutor(2)
    r._pull_lock, r._receive, r.arn = threading.Lock(), receive, "arn:aws:sqs:us-east-1:1:q"
    r._convert = lambda arn, raw: [raw["ReceiptHandle"]]
    try:
        assert r.pull(10, 60.0) == ["r1"]
        assert len(calls) == 4
    finally:
        r._pool.shutdown()
