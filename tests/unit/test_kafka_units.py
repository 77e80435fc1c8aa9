"""kafka connector logic without a broker: config, record decoding, offsets restriction, start."""

from __future__ import annotations

import pytest

from meshline.config import parse_config
from meshline.connectors.kafka import read
from meshline.connectors.kafka.config import KafkaSourceConfig, KafkaTargetConfig
from meshline.connectors.kafka.source import MESSAGE_TYPE, KafkaDecoder, record_time
from meshline.connectors.kafka.target import producer_properties
from meshline.errors import ConfigError
from meshline.registry import lookup

# --------------------------------------------------------------------------- config


def test_source_config_defaults_and_security_mapping():
    c = parse_config(
        KafkaSourceConfig,
        {
            "bootstrap_servers": ["a:9092", " b:9092 "],
            "topics": "orders, refunds",
            "sasl_mechanism": "SCRAM-SHA-512",
            "username": "u",
            "password": "p",
            "tls_ca": "/ca.pem",
        },
    )
    assert c.topic_list == ["orders", "refunds"] and c.start == "earliest"
    props = c.client_properties()
    assert props["bootstrap.servers"] == "a:9092,b:9092"
    assert props["security.protocol"] == "SASL_SSL"  # a SASL mechanism implies TLS unless told otherwise
    assert (props["sasl.mechanism"], props["sasl.username"], props["sasl.password"]) == (
        "SCRAM-SHA-512",
        "u",
        "p",
    )
    assert props["ssl.ca.location"] == "/ca.pem"
    assert c.first_server == "a:9092"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"bootstrap_servers": "", "topics": "t"}, "bootstrap_servers"),
        ({"bootstrap_servers": "a:1", "topics": " "}, "topics"),
        ({"bootstrap_servers": "a:1", "topics": "t", "sasl_mechanism": "PLAIN"}, "username and password"),
        ({"bootstrap_servers": "a:1", "topics": "t", "security_protocol": "SASL_SSL"}, "sasl_mechanism"),
        ({"bootstrap_servers": "a:1", "topics": "t", "start": "timestamp"}, "start_time"),
        ({"bootstrap_servers": "a:1", "topics": "t", "start_time": "yesterday"}, "start_time"),
        ({"bootstrap_servers": "a:1", "topics": "t", "start": "middle"}, "start"),
        ({"bootstrap_servers": "a:1", "topics": "t", "batch": 0}, "batch"),
    ],
)
def test_source_config_errors_name_the_key(config, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(KafkaSourceConfig, config)


def test_start_time_accepts_rfc3339_and_epoch_millis():
    base = {"bootstrap_servers": "a:1", "topics": "t", "start": "timestamp"}
    assert parse_config(KafkaSourceConfig, {**base, "start_time": "2024-05-01T00:00:00Z"}).start_millis == (
        1_714_521_600_000
    )
    assert (
        parse_config(KafkaSourceConfig, {**base, "start_time": 1_714_521_600_000}).start_millis
        == 1_714_521_600_000
    )


def test_target_producer_is_idempotent_and_batched():
    c = parse_config(KafkaTargetConfig, {"bootstrap_servers": "a:1", "topic": "out", "linger": "50ms"})
    props = producer_properties(c)
    assert props["enable.idempotence"] is True and props["acks"] == "all"
    assert props["linger.ms"] == 50 and props["compression.type"] == "lz4"
    overridden = producer_properties(
        parse_config(
            KafkaTargetConfig, {"bootstrap_servers": "a:1", "topic": "o", "properties": {"linger.ms": 5}}
        )
    )
    assert overridden["linger.ms"] == 5  # properties is the escape hatch and wins


def test_credentials_are_secret_keys():
    for kind in ("source", "target"):
        component = lookup(kind, "kafka")
        assert component is not None
        assert set(component.secret_marks) == {"password", "tls_key_password", "properties"}
        assert component.schema()["properties"]["password"].get("writeOnly") is True


# --------------------------------------------------------------------------- decoding

DECODER = KafkaDecoder("broker:9092")


def test_plain_record_is_wrapped_per_spec():
    event, problem = DECODER.decode(
        "orders",
        2,
        41,
        b"cust-7",
        b'{"amount": 5}',
        [("traceparent", b"00-1-01"), ("X-Bad", b"v")],
        1_714_521_600_123,
    )
    assert problem is None
    assert event.attributes == {
        "specversion": "1.0",
        "id": "orders-2-41",
        "source": "kafka://broker:9092/orders",
        "type": MESSAGE_TYPE,
        "time": "2024-05-01T00:00:00.123Z",
        "partitionkey": "cust-7",
        "traceparent": "00-1-01",
    }
    assert event.data == {"amount": 5}


def test_non_json_value_is_binary_and_empty_value_is_no_data():
    event, _ = DECODER.decode("t", 0, 1, None, b"\x00\xff", None, 0)
    assert (
        event.data == b"\x00\xff"
        and "time" not in event.attributes
        and "partitionkey" not in event.attributes
    )
    event, _ = DECODER.decode("t", 0, 2, None, None, None, 5)
    assert event.data is None


def test_cloudevents_pass_through_in_both_modes():
    binary = [("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_source", b"/s"), ("ce_type", b"t.t")]
    event, problem = DECODER.decode(
        "t", 0, 1, b"k", b'{"a": 1}', [*binary, ("content-type", b"application/json")], 1
    )
    assert problem is None and event.id == "x" and event.data == {"a": 1}
    assert "partitionkey" not in event.attributes  # the record key is not added (Kafka binding §3.1)
    event, _ = DECODER.decode("t", 0, 1, b"k", None, [*binary, ("ce_partitionkey", b"p")], 1)
    assert event.get("partitionkey") == "p"  # the event's own partitionkey, not the key
    structured = b'{"specversion": "1.0", "id": "y", "source": "/s", "type": "t.t", "data": 2}'
    event, problem = DECODER.decode(
        "t", 0, 2, None, structured, [("Content-Type", b"application/cloudevents+json; charset=utf-8")], 1
    )
    assert problem is None and event.id == "y" and event.data == 2


def test_broken_cloudevent_is_reported_with_its_raw_value():
    event, problem = DECODER.decode(
        "t", 1, 9, None, b"{nope", [("content-type", b"application/cloudevents+json")], 1
    )
    assert problem is not None and "JSON" in problem
    assert event.id == "t-1-9" and event.data == b"{nope"


def test_record_time_is_rfc3339_utc_millis():
    assert record_time(0) == "1970-01-01T00:00:00.000Z"
    assert record_time(1_714_521_600_999) == "2024-05-01T00:00:00.999Z"


# --------------------------------------------------------------------------- restriction


def test_offsets_tracker_claims_checkpoints_and_stops():
    t = read._OffsetTracker(read._Offsets())
    assert t.try_claim((read._START, 100))
    assert t.try_claim(100) and t.try_claim(149)
    primary, residual = t.try_split(0)
    assert primary.done and primary.next == 150
    assert not residual.done and residual.next == 150  # the rest resumes after the last claimed offset
    assert not t.try_claim(150)  # this restriction is finished
    assert t.try_split(0.5) is None and t.is_bounded()


def test_progress_never_reports_zero_remaining_work():
    for r in (read._Offsets(), read._Offsets(10, True, 0.0)):
        p = read._OffsetTracker(r).current_progress()
        assert p.remaining_work > 0 and 0 <= p.fraction_completed <= 1


def test_stop_ends_the_restriction():
    t = read._OffsetTracker(read._Offsets(5))
    assert not t.try_claim(read._STOP)
    assert t.current_restriction().done and not t.try_claim(6)


def test_max_events_budget_is_shared_and_given_back():
    token = "unit-budget"
    assert read._take(token, 10, 7) == 7
    assert read._take(token, 10, 7) == 3
    assert read._take(token, 10, 7) == 0
    read._give_back(token, 10, 2)
    assert read._take(token, 10, 7) == 2
    assert read._take("unlimited", None, 7) == 7


class _FakeConsumer:
    """Answers the three offset questions like confluent-kafka's Consumer."""

    def __init__(self, committed: int, low: int = 3, high: int = 50, at_time: int = 20):
        self._committed, self._low, self._high, self._at = committed, low, high, at_time

    def committed(self, tps, timeout):
        tps[0].offset = self._committed
        return tps

    def get_watermark_offsets(self, tp, timeout):
        return self._low, self._high

    def offsets_for_times(self, tps, timeout):
        tps[0].offset = self._at
        return tps


def _fn(start: str) -> read._ReadPartitionFn:
    return read._ReadPartitionFn(
        {},
        lambda: None,
        start=start,
        start_millis=123,
        max_events=None,
        idle_timeout=None,
        batch=10,
        poll=0.1,
        source_name="s",
    )


@pytest.mark.parametrize(("start", "expected"), [("earliest", 3), ("latest", 50), ("timestamp", 20)])
def test_start_position_without_committed_offset(start, expected):
    assert _fn(start)._resolve_start(_FakeConsumer(committed=-1001), "t", 0) == (expected, False)


def test_committed_group_offset_wins_over_start():
    for start in ("earliest", "latest", "timestamp"):
        assert _fn(start)._resolve_start(_FakeConsumer(committed=42), "t", 0) == (42, True)


def test_timestamp_after_the_last_record_starts_at_the_end():
    assert _fn("timestamp")._resolve_start(_FakeConsumer(committed=-1001, at_time=-1), "t", 0) == (50, False)
