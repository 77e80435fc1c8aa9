"""aws.s3 notification records → CloudEvents, and the AWS error classes (no server)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from meshline.connectors.aws.common import AwsConnection, is_transient, queue_arn, region_of
from meshline.connectors.aws.s3_source import event_type, record_to_event
from meshline.connectors.aws.s3_target import _TooLarge
from meshline.errors import EventError
from meshline.events import CloudEvent

RECORD = {
    "eventVersion": "2.1",
    "eventSource": "aws:s3",
    "eventTime": "2026-11-25T10:00:00.000Z",
    "eventName": "ObjectCreated:Put",
    "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810"},
    "s3": {
        "bucket": {"name": "lake", "arn": "arn:aws:s3:::lake"},
        "object": {"key": "in/my+file.json", "size": 10, "sequencer": "0055AED6DCD90281E5"},
    },
}


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ObjectCreated:Put", "com.amazon.s3.objectcreated"),
        ("ObjectCreated:CompleteMultipartUpload", "com.amazon.s3.objectcreated"),
        ("ObjectRemoved:DeleteMarkerCreated", "com.amazon.s3.objectremoved"),
        ("ObjectRestore:Completed", "com.amazon.s3.objectrestore"),
        ("LifecycleExpiration:Delete", "com.amazon.s3.lifecycleexpiration"),
        ("ReducedRedundancyLostObject", "com.amazon.s3.reducedredundancylostobject"),
    ],
)
def test_types_follow_the_event_category(name, expected):
    assert event_type(name) == expected


def test_a_record_becomes_an_event():
    e = record_to_event(RECORD)
    assert e.attributes == {
        "specversion": "1.0",
        "id": "in/my file.json@0055AED6DCD90281E5",
        "source": "arn:aws:s3:::lake",
        "type": "com.amazon.s3.objectcreated",
        "subject": "in/my file.json",
        "time": "2026-11-25T10:00:00.000Z",
    }
    assert e.data is RECORD


def test_ids_without_a_sequencer():
    r = {**RECORD, "s3": {"bucket": {"name": "lake"}, "object": {"key": "k"}}}
    assert record_to_event(r).id == "k@C3D13FE58DE4C810"
    assert record_to_event(r).source == "arn:aws:s3:::lake"
    bare = {k: v for k, v in r.items() if k != "responseElements"}
    assert record_to_event(bare).id == "k@ObjectCreated:Put@2026-11-25T10:00:00.000Z"


@pytest.mark.parametrize(
    "record, error",
    [
        ("x", "must be a JSON object"),
        ({"eventName": "ObjectCreated:Put"}, "no s3.bucket.name"),
        ({**RECORD, "s3": {"bucket": {"name": "b"}}}, "no s3.object.key"),
        ({**RECORD, "eventName": ""}, "no eventName"),
    ],
)
def test_broken_records_are_decode_failures(record, error):
    with pytest.raises(EventError, match=error):
        record_to_event(record)


def test_too_large_events_are_rejected_with_their_size():
    check = _TooLarge(100)
    small = CloudEvent({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}, "x")
    assert check(small) is None
    why = check(small.replace(data="x" * 200))
    assert why is not None and why.startswith("event of 2") and "exceeds max_event_bytes (100)" in why


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    "error, transient",
    [
        (_client_error("SlowDown", 503), True),
        (_client_error("ThrottlingException", 400), True),
        (_client_error("InternalError", 500), True),
        (_client_error("Whatever", 502), True),
        (_client_error("TooManyRequests", 429), True),
        (_client_error("AccessDenied", 403), False),
        (_client_error("NoSuchBucket", 404), False),
        (_client_error("AWS.SimpleQueueService.NonExistentQueue", 400), False),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ValueError("bug"), False),
    ],
)
def test_error_classes(error, transient):
    assert is_transient(error) is transient


def test_regions_and_arns():
    conn = AwsConnection()
    assert region_of(conn, "https://sqs.eu-west-1.amazonaws.com/123456789012/q") == "eu-west-1"
    assert region_of(conn, "http://127.0.0.1:5000/123456789012/q") is None
    assert (
        region_of(AwsConnection(region="us-east-2"), "https://sqs.eu-west-1.amazonaws.com/1/q") == "us-east-2"
    )
    assert queue_arn("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q", "cn-north-1") == (
        "arn:aws-cn:sqs:cn-north-1:123456789012:q"
    )


class _MemoryStore:
    """An in-process object store for the pipeline test (class-level: DoFns are pickled)."""

    objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes, content_type: str) -> None:
        _MemoryStore.objects[key] = data

    def close(self) -> None:
        pass


def test_max_event_bytes_dead_letters_in_the_writing_step():
    import apache_beam as beam
    from apache_beam.testing.util import assert_that

    from meshline.connectors.formats import read_rows
    from meshline.connectors.objects import WriteObjects

    _MemoryStore.objects.clear()
    events = [
        CloudEvent({"specversion": "1.0", "id": str(i), "source": "/s", "type": "t"}, "x" * (i * 60))
        for i in range(4)
    ]

    def check(dead):
        assert sorted(e.id for e in dead) == ["2", "3"]
        assert all("exceeds max_event_bytes (150)" in e.attributes["meshlineerror"] for e in dead)

    with beam.Pipeline(runner="FnApiRunner") as p:
        dead = (
            p
            | beam.Create(events)
            | WriteObjects(_MemoryStore, prefix="p", format="jsonl", target_name="t", reject=_TooLarge(150))
        )
        assert_that(dead, check)
    (data,) = _MemoryStore.objects.values()
    assert sorted(r["id"] for r in read_rows("jsonl", data)) == ["0", "1"]
