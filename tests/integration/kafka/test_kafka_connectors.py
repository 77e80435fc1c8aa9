"""kafka source and target details against a real broker: bindings, start positions, SCRAM, failures."""

from __future__ import annotations

import json

import orjson
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.harness import rows_in
from tests.integration.kafka.support import drain, fully_committed, new_topic, produce
from tests.servers.kafka import SCRAM_USER

pytestmark = pytest.mark.integration


def _header(m, name: str) -> str | None:
    for k, v in m.headers() or ():
        if k == name:
            return v.decode()
    return None


def _events(folder) -> list[dict]:
    return rows_in(folder)


def _spec(path, source: str, targets: str, triggers: str, dead_letter: str = "") -> str:
    path.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: kafka-it}}
spec:
  sources:
    - name: in
      type: kafka
      config:
{source}
  targets:
{targets}
  triggers:
{triggers}
{dead_letter}
""")
    return str(path)


def test_cloudevents_pass_through_and_records_are_wrapped(meshline, kafka, tmp_path):
    topic = new_topic(kafka.bootstrap, 1, "mixed")
    binary_ce = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"b-1"),
        ("ce_source", b"/orders"),
        ("ce_type", b"order.created"),
        ("ce_subject", b"order-1"),
        ("content-type", b"application/json"),
    ]
    structured = orjson.dumps(
        {"specversion": "1.0", "id": "s-1", "source": "/orders", "type": "order.paid", "data": {"n": 2}}
    )
    produce(
        kafka.bootstrap,
        topic,
        [
            (b"k-1", b'{"n": 1}', binary_ce),
            (None, structured, [("content-type", b"application/cloudevents+json")]),
            (b"plain-key", b'{"n": 3}', [("traceparent", b"00-abc-01"), ("X-Bad Name", b"dropped")]),
            (None, b"\xff\xfe not json", None),
            (None, b"{oops", [("ce_specversion", b"1.0"), ("ce_id", b"x")]),  # broken binary CE
        ],
    )
    out = tmp_path / "out"
    spec = _spec(
        tmp_path / "it.yaml",
        f"        {{bootstrap_servers: '{kafka.bootstrap}', topics: [{topic}], idle_timeout: 4s, poll: 0.3}}",
        f"""    - {{name: files, type: file, config: {{path: "{out}/events"}}}}
    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}
    - {{name: kafka-out, type: kafka, config: {{bootstrap_servers: "{kafka.bootstrap}", topic: {topic}-out}}}}
    - name: kafka-structured
      type: kafka
      config: {{bootstrap_servers: "{kafka.bootstrap}", topic: {topic}-st, mode: structured,
               key_attribute: type}}""",
        """    - {name: to-files, target: files}
    - {name: to-kafka, target: kafka-out}
    - {name: to-structured, target: kafka-structured}""",
        "  deadLetter: dlq",
    )
    r = meshline("run", spec, "--runner", "direct")
    assert r.returncode == 0, r.stderr[-3000:]

    events = {e["id"]: e for e in _events(out / "events")}
    assert set(events) == {"b-1", "s-1", f"{topic}-0-2", f"{topic}-0-3"}
    assert events["b-1"]["type"] == "order.created" and events["b-1"]["data"] == {"n": 1}
    assert "partitionkey" not in events["b-1"]  # a key mapper MUST NOT modify the event (binding §3.1)
    assert events["s-1"]["type"] == "order.paid" and events["s-1"]["data"] == {"n": 2}
    wrapped = events[f"{topic}-0-2"]
    assert wrapped["type"] == "dev.meshline.kafka.message"
    assert wrapped["source"] == f"kafka://{kafka.bootstrap}/{topic}"
    assert wrapped["partitionkey"] == "plain-key" and wrapped["traceparent"] == "00-abc-01"
    assert wrapped["data"] == {"n": 3} and wrapped["time"].endswith("Z")
    assert not any(k.startswith("x") for k in wrapped)
    assert events[f"{topic}-0-3"]["data_base64"]  # not JSON: binary data
    dlq = _events(out / "dlq")
    assert len(dlq) == 1 and dlq[0]["meshlineerrorstage"] == "decode" and dlq[0]["id"] == f"{topic}-0-4"

    # Binary mode (default): ce_* headers, key = partitionkey / subject / id
    records = {_header(m, "ce_id"): m for m in drain(kafka.bootstrap, f"{topic}-out", expect=4)}
    assert set(records) == set(events)
    b1 = records["b-1"]
    assert b1.key() == b"order-1" and _header(b1, "ce_type") == "order.created"  # no partitionkey: subject
    assert _header(b1, "ce_partitionkey") is None  # nothing added on the way out either
    assert _header(b1, "content-type") == "application/json" and orjson.loads(b1.value()) == {"n": 1}
    assert records["s-1"].key() == b"s-1"
    # Structured mode: the JSON format as value; key from the configured attribute
    st = drain(kafka.bootstrap, f"{topic}-st", expect=4)
    assert {orjson.loads(m.value())["id"] for m in st} == set(events)
    assert {m.key() for m in st} == {b"order.created", b"order.paid", b"dev.meshline.kafka.message"}
    assert all(_header(m, "content-type") == "application/cloudevents+json" for m in st)


def test_start_timestamp_then_committed_offsets_win_over_scram(meshline, kafka, tmp_path):
    topic = new_topic(kafka.bootstrap, 2, "history")
    old = 1_577_836_800_000  # 2020-01-01
    new = 1_714_521_600_000  # 2024-05-01
    produce(
        kafka.bootstrap,
        topic,
        [(None, orjson.dumps({"n": i, "era": "old"}), None) for i in range(6)],
        timestamp=old,
    )
    produce(
        kafka.bootstrap,
        topic,
        [(None, orjson.dumps({"n": i, "era": "new"}), None) for i in range(4)],
        timestamp=new,
    )
    user, password = SCRAM_USER
    out = tmp_path / "out"
    source = f"""        bootstrap_servers: "{kafka.sasl_bootstrap}"
        security_protocol: SASL_PLAINTEXT
        sasl_mechanism: SCRAM-SHA-256
        username: {user}
        password: "{password}"
        topics: {topic}
        group_id: g-{topic}
        start: timestamp
        start_time: "2023-01-01T00:00:00Z"
        idle_timeout: 6s
        poll: 300ms"""
    spec = _spec(
        tmp_path / "it.yaml",
        source,
        f'    - {{name: files, type: file, config: {{path: "{out}"}}}}',
        "    - {name: all, target: files}",
    )
    r = meshline("run", spec, "--runner", "direct")
    assert r.returncode == 0, r.stderr[-3000:]
    assert password not in r.stdout + r.stderr
    first = _events(out)
    assert sorted((e["data"]["era"], e["data"]["n"]) for e in first) == [("new", i) for i in range(4)]
    assert fully_committed(kafka.bootstrap, topic, f"g-{topic}") == {}

    # Same group again: its committed offsets win over start; only records added since are read.
    produce(kafka.bootstrap, topic, [(None, orjson.dumps({"n": 9, "era": "later"}), None)], timestamp=old)
    out2 = tmp_path / "out2"
    spec = _spec(
        tmp_path / "it2.yaml",
        source,
        f'    - {{name: files, type: file, config: {{path: "{out2}"}}}}',
        "    - {name: all, target: files}",
    )
    r = meshline("run", spec, "--runner", "direct")
    assert r.returncode == 0, r.stderr[-3000:]
    assert [e["data"] for e in _events(out2)] == [{"n": 9, "era": "later"}]


def test_idle_timeout_does_not_end_a_read_that_has_records_left(meshline, kafka, tmp_path):
    """A 1 ms idle_timeout is over before the first fetch returns: the read goes on until the
    partition's end all the same (a slow consumer is not an idle one), then ends."""
    topic = new_topic(kafka.bootstrap, 2, "idle")
    records = [(str(i).encode(), orjson.dumps({"n": i}), None) for i in range(40)]
    assert produce(kafka.bootstrap, topic, records) == 40
    out = tmp_path / "out"
    source = f"""        bootstrap_servers: "{kafka.bootstrap}"
        topics: {topic}
        group_id: g-{topic}
        start: earliest
        idle_timeout: 1ms
        poll: 10ms"""
    spec = _spec(
        tmp_path / "it.yaml",
        source,
        f'    - {{name: files, type: file, config: {{path: "{out}"}}}}',
        "    - {name: all, target: files}",
    )
    r = meshline("run", spec, "--runner", "direct")
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(e["data"]["n"] for e in _events(out)) == list(range(40))
    assert fully_committed(kafka.bootstrap, topic, f"g-{topic}") == {}


def test_target_rejections_and_unreachable_brokers_are_dead_lettered(meshline, kafka, tmp_path):
    small = f"small-{tmp_path.name[-8:]}"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    admin.create_topics([NewTopic(small, 1, 1, config={"max.message.bytes": "2000"})])[small].result(30)
    events = tmp_path / "events.jsonl"
    lines = []
    for i in range(6):
        size = 5000 if i % 3 == 0 else 10  # every third event is too large for the topic
        ev = {"specversion": "1.0", "id": f"e-{i}", "source": "/t", "type": "t", "data": {"pad": "x" * size}}
        lines.append(orjson.dumps(ev).decode())
    events.write_text("\n".join(lines) + "\n")
    out = tmp_path / "dlq"
    spec = tmp_path / "it.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: kafka-target-it}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{events}"}}}}
  targets:
    - name: small
      type: kafka
      config: {{bootstrap_servers: "{kafka.bootstrap}", topic: {small}, compression: none}}
    - name: nowhere
      type: kafka
      config: {{bootstrap_servers: "127.0.0.1:9", topic: t, delivery_timeout: 1s}}
    - {{name: dlq, type: file, config: {{path: "{out}"}}}}
  triggers:
    - {{name: to-small, target: small}}
    - name: to-nowhere
      target: nowhere
      delivery: {{retries: 1, backoff: {{policy: linear, delay: 100ms}}}}
  deadLetter: dlq
""")
    r = meshline("run", str(spec), "--runner", "direct", timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    delivered = drain(kafka.bootstrap, small, expect=4)
    assert sorted(_header(m, "ce_id") for m in delivered) == ["e-1", "e-2", "e-4", "e-5"]
    dead = _events(out)
    too_large = sorted(d["id"] for d in dead if "MSG_SIZE_TOO_LARGE" in d["meshlineerror"])
    assert too_large == ["e-0", "e-3"]  # permanent: dead-lettered at once, not retried
    unreachable = [d for d in dead if "timed out" in d["meshlineerror"].lower()]
    assert sorted(d["id"] for d in unreachable) == [f"e-{i}" for i in range(6)]
    assert all("after 2 attempts" in d["meshlineerror"] for d in unreachable)
    assert all(d["meshlineerrorstage"] == "deliver" for d in dead) and len(dead) == 8


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_dead_letters_of_rejected_records_are_the_events_that_failed(meshline, kafka, tmp_path, mode):
    """The dead letter of a rejected record carries exactly its event: every attribute with its
    type, nothing the binding added (content-type, the key as partitionkey), its data. (A
    delivery report carries no headers, so a binary-mode event cannot be rebuilt from its
    record: the target keeps each event's attributes until its report, and reads JSON data
    back from the record's value.)"""
    import base64

    small = f"small-{mode}-{tmp_path.name[-8:]}"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    admin.create_topics([NewTopic(small, 1, 1, config={"max.message.bytes": "2000"})])[small].result(30)
    pad = "x" * 5000  # every event here is too large for the topic
    base = {"specversion": "1.0", "source": "/t", "type": "t"}
    events = [
        {**base, "id": "plain", "data": {"pad": pad}},
        {**base, "id": "keyed", "partitionkey": "k1", "subject": "s", "data": [pad]},
        {**base, "id": "typed", "priority": 5, "flag": True, "data": {"pad": pad}},
        {**base, "id": "xml", "datacontenttype": "application/xml", "data": f"<a>{pad}</a>"},
        {**base, "id": "json-ct", "datacontenttype": "application/json", "data": {"pad": pad}},
        {**base, "id": "text", "data": pad},
        {**base, "id": "binary", "data_base64": base64.b64encode(pad.encode()).decode()},
        {**base, "id": "no-data", "bigext": pad},
    ]
    src = tmp_path / "events.jsonl"
    src.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    out = tmp_path / "dlq"
    spec = tmp_path / "it.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: kafka-dead-letters}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{src}"}}}}
  targets:
    - name: small
      type: kafka
      config: {{bootstrap_servers: "{kafka.bootstrap}", topic: {small}, compression: none, mode: {mode}}}
    - {{name: dlq, type: file, config: {{path: "{out}"}}}}
  triggers:
    - {{name: to-small, target: small}}
  deadLetter: dlq
""")
    r = meshline("run", str(spec), "--runner", "direct", timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    dead = _events(out)
    assert all("MSG_SIZE_TOO_LARGE" in d["meshlineerror"] for d in dead)
    as_sent = {d["id"]: {k: v for k, v in d.items() if not k.startswith("meshline")} for d in dead}
    assert as_sent == {e["id"]: e for e in events}
    for e in events:  # integers and booleans stay what they were (== would take 1 for True)
        assert [type(v) for v in as_sent[e["id"]].values()] == [type(v) for v in e.values()], e["id"]


def test_an_event_kafka_cannot_encode_is_dead_lettered_and_the_rest_delivered(kafka):
    """Data JSON cannot hold (a set: only user code makes one) is dead-lettered with the reason
    at once, never retried; the bundle's other events arrive, an integer beyond 64 bits exact."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from meshline.config import parse_config
    from meshline.connectors.kafka.config import KafkaTargetConfig
    from meshline.connectors.kafka.target import WriteToKafka
    from meshline.events import CloudEvent

    topic = new_topic(kafka.bootstrap, 1, "unencodable")
    config = parse_config(KafkaTargetConfig, {"bootstrap_servers": kafka.bootstrap, "topic": topic})

    def event(i: str, data: object) -> CloudEvent:
        return CloudEvent({"specversion": "1.0", "id": i, "source": "/t", "type": "t"}, data)

    events = [event("ok-1", {"n": 1}), event("huge", {"n": 2**70}), event("set", {1, 2}), event("ok-2", [2])]

    def seen(e: CloudEvent) -> tuple:
        return e.id, repr(e.data), e.get("meshlineerror")

    why = "cannot encode event as a Kafka record: TypeError:"

    with beam.Pipeline() as p:
        dead = p | beam.Create(events, reshuffle=False) | WriteToKafka(config, target_name="out")
        assert_that(
            dead | beam.Map(seen),
            equal_to(
                [
                    ("set", repr({1, 2}), f"{why} Type is not JSON serializable: set"),
                ]
            ),
        )
    out = drain(kafka.bootstrap, topic, expect=3)
    assert sorted((_header(m, "ce_id"), json.loads(m.value())) for m in out) == [
        ("huge", {"n": 2**70}),  # JSON holds it; the standard library reads it back exactly
        ("ok-1", {"n": 1}),
        ("ok-2", [2]),
    ]
