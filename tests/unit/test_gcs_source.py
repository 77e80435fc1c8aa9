"""google.storage source: notification → CloudEvent, config checks, poll state (fake bucket listing)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import orjson
import pytest

from meshline.config import parse_config
from meshline.connectors.gcs.poll import PollReader
from meshline.connectors.gcs.source import (
    GcsSourceConfig,
    event_type,
    notification_to_event,
    object_event,
    with_content,
)
from meshline.errors import ConfigError, EventError

T0 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)
ATTRS = {
    "eventType": "OBJECT_FINALIZE",
    "bucketId": "photos",
    "objectId": "2026/cat.jpg",
    "objectGeneration": "17",
    "eventTime": "2026-11-25T10:00:01.5Z",
    "payloadFormat": "JSON_API_V1",
}
RESOURCE = {
    "kind": "storage#object",
    "name": "2026/cat.jpg",
    "bucket": "photos",
    "generation": "17",
    "size": "3",
}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("OBJECT_FINALIZE", "com.google.cloud.storage.objectfinalize"),
        ("OBJECT_METADATA_UPDATE", "com.google.cloud.storage.objectmetadataupdate"),
        ("OBJECT_DELETE", "com.google.cloud.storage.objectdelete"),
        ("OBJECT_ARCHIVE", "com.google.cloud.storage.objectarchive"),
    ],
)
def test_event_types_follow_triggermesh(kind, expected):
    assert event_type(kind) == expected
    e = notification_to_event("m-1", orjson.dumps(RESOURCE), {**ATTRS, "eventType": kind}, T0)
    assert e.attributes["type"] == expected


def test_notification_becomes_one_event_with_the_metadata():
    e = notification_to_event("m-1", orjson.dumps(RESOURCE), ATTRS, T0)
    assert e.attributes == {
        "specversion": "1.0",
        "id": "m-1",
        "source": "//storage.googleapis.com/projects/_/buckets/photos",
        "type": "com.google.cloud.storage.objectfinalize",
        "subject": "objects/2026/cat.jpg",
        "time": "2026-11-25T10:00:01.5Z",
        "datacontenttype": "application/json",
    }
    assert e.data == RESOURCE


def test_payload_format_none_and_missing_event_time():
    attrs = {k: v for k, v in ATTRS.items() if k != "eventTime"} | {"payloadFormat": "NONE"}
    e = notification_to_event("m-2", b"", attrs, T0)
    assert e.data == {"bucket": "photos", "name": "2026/cat.jpg", "generation": "17"}
    assert e.attributes["time"] == "2026-11-25T10:00:00Z"


@pytest.mark.parametrize(
    ("data", "attrs", "message"),
    [
        (b"{}", {**ATTRS, "eventType": "OBJECT_EXPLODE"}, "not a Cloud Storage notification"),
        (b"{}", {k: v for k, v in ATTRS.items() if k != "objectId"}, "without bucketId/objectId"),
        (b"{not json", ATTRS, "not JSON"),
    ],
)
def test_broken_notifications_raise_event_error(data, attrs, message):
    with pytest.raises(EventError, match=message):
        notification_to_event("m", data, attrs, T0)


def test_object_event_for_poll_mode():
    e = object_event("photos", {**RESOURCE, "updated": "2026-11-25T09:00:00Z"})
    assert e.attributes["id"] == "2026/cat.jpg#17"
    assert e.attributes["type"] == "com.google.cloud.storage.objectfinalize"
    assert e.attributes["time"] == "2026-11-25T09:00:00Z"


def test_download_content_text_or_base64():
    e = object_event("photos", RESOURCE)
    assert with_content(e, b"hi").data["content"] == "hi"
    assert with_content(e, b"\xff\x00").data["content_base64"] == "/wA="
    assert "content" not in e.data  # the original is not mutated


def _parse(**config):
    return parse_config(GcsSourceConfig, config, where="source s")


def test_config_checks_name_the_key():
    assert _parse(bucket="b", project="p", subscription="s").subscription_path == "projects/p/subscriptions/s"
    assert _parse(bucket="b", subscription="projects/q/subscriptions/s").subscription_path.startswith(
        "projects/q"
    )
    assert _parse(bucket="b", mode="poll").mode == "poll"
    cases = [
        ({"bucket": "b"}, "subscription: required"),
        ({"bucket": "b", "subscription": "s"}, "project: required"),
        ({"bucket": "b", "mode": "poll", "subscription": "s"}, "subscription: not used with mode: poll"),
        ({"bucket": "b", "mode": "poll", "state": "x", "state_path": "y"}, "state, state_path"),
        ({"bucket": "b", "mode": "poll", "event_types": ["OBJECT_EXPLODE"]}, "event_types: unknown"),
    ]
    for config, message in cases:
        with pytest.raises(ConfigError, match=message):
            _parse(**config)


def test_event_types_accept_short_and_full_names():
    c = _parse(
        bucket="b", mode="poll", event_types=["objectdelete", "com.google.cloud.storage.objectfinalize"]
    )
    assert c.wanted_types == {"OBJECT_DELETE", "OBJECT_FINALIZE"}


# --------------------------------------------------------------------------- poll state


class _FakeBucket:
    """A bucket listing (fake of the client's list_blobs); objects: name -> generation."""

    def __init__(self):
        self.name = "b"
        self.objects: dict[str, int] = {}

    def blob(self, name):  # only used for the bucket state, not in these tests
        raise AssertionError("a state_path reader must not touch the bucket state")

    def list(self, prefix):
        return [
            SimpleNamespace(
                _properties={"name": n, "generation": str(g), "updated": f"2026-11-25T10:00:{i:02d}Z"}
            )
            for i, (n, g) in enumerate(sorted(self.objects.items()))
            if n.startswith(prefix or "")
        ]


class _FakeClient:
    def __init__(self, bucket):
        self._bucket = bucket

    def bucket(self, name):
        return self._bucket

    def list_blobs(self, name, prefix=None):
        return self._bucket.list(prefix)


def _reader(bucket, state_path, **config):
    c = _parse(bucket="b", mode="poll", state_path=str(state_path), poll_interval="1ms", **config)
    return PollReader(c, "unused", make_event=object_event, client=_FakeClient(bucket))


def test_poll_remembers_only_acknowledged_objects(tmp_path):
    bucket = _FakeBucket()
    bucket.objects = {"a": 1, "b": 1, "c": 1}
    state = tmp_path / "state.json"
    r = _reader(bucket, state)
    got = r.pull(10, 0.01)
    assert [m.event.attributes["id"] for m in got] == ["a#1", "b#1", "c#1"]
    assert r.pull(10, 0.01) == []  # in flight: not emitted twice by the same reader
    r.ack([got[0].ack_id, got[1].ack_id])  # the bundle holding c never committed
    # A restart: a and b are remembered, c is emitted again.
    r2 = _reader(bucket, state)
    assert [m.event.attributes["id"] for m in r2.pull(10, 0.01)] == ["c#1"]


def test_poll_new_generation_prefix_and_pruning(tmp_path):
    bucket = _FakeBucket()
    bucket.objects = {"in/a": 1, "in/b": 1, "out/x": 1}
    state = tmp_path / "state.json"
    r = _reader(bucket, state, object_name_prefix="in/")
    r.ack([m.ack_id for m in r.pull(10, 0.01)])
    bucket.objects.update({"in/a": 2})
    del bucket.objects["in/b"]
    got = r.pull(10, 0.01)
    assert [m.event.attributes["id"] for m in got] == ["in/a#2"]
    r.ack([m.ack_id for m in got])
    r.ack([m.ack_id for m in got])  # finalizers may run twice: harmless
    assert orjson.loads(state.read_bytes())["objects"] == {"in/a": "2"}  # in/b is gone from the bucket
