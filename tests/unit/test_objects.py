"""The object-store target core against an in-memory store (the real stores have integration tests)."""

from __future__ import annotations

import itertools
import threading
import uuid

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to

from meshline.connectors.delivery import RetryPolicy, TransientError
from meshline.connectors.formats import read_rows
from meshline.connectors.objects import WriteObjects
from meshline.events import CloudEvent

_STORES: dict[str, dict[str, bytes]] = {}
_FAILS: dict[str, itertools.count] = {}
_DEAD: dict[str, list[CloudEvent]] = {}
_LOCK = threading.Lock()


class _Collect:
    def __init__(self, key: str):
        self._key = key

    def __call__(self, event: CloudEvent) -> None:
        with _LOCK:
            _DEAD.setdefault(self._key, []).append(event)


class _MemoryStore:
    """A bucket in this process; ``fail`` transient failures before puts succeed (-1: always)."""

    def __init__(self, bucket: str, fail: int = 0, permanent: bool = False):
        self._bucket = bucket
        self._fail = fail
        self._permanent = permanent

    def put(self, key: str, data: bytes, content_type: str) -> None:
        with _LOCK:
            n = next(_FAILS.setdefault(self._bucket, itertools.count()))
        if self._permanent:
            raise PermissionError("AccessDenied: no write permission on the bucket")
        if self._fail < 0 or n < self._fail:
            raise TransientError("503 SlowDown")
        with _LOCK:
            _STORES.setdefault(self._bucket, {})[key] = data

    def close(self) -> None:
        pass


class _Make:
    def __init__(self, bucket: str, **kw):
        self._bucket = bucket
        self._kw = kw

    def __call__(self):
        return _MemoryStore(self._bucket, **self._kw)


def _events(n: int, type_: str = "com.example.order") -> list[CloudEvent]:
    return [
        CloudEvent(
            {
                "specversion": "1.0",
                "id": str(i),
                "source": "/orders",
                "type": type_,
                "time": "2026-11-25T10:00:00Z",
            },
            {"n": i, "name": f"order {i}"},
        )
        for i in range(n)
    ]


def _run(events, fmt="jsonl", fail=0, permanent=False, **kw) -> tuple[str, list[CloudEvent]]:
    bucket = uuid.uuid4().hex
    with beam.Pipeline(runner="BundleBasedDirectRunner") as p:
        out = (
            p
            | beam.Create(events)
            | WriteObjects(
                _Make(bucket, fail=fail, permanent=permanent),
                format=fmt,
                target_name="lake",
                policy=RetryPolicy(retries=2, delay=0.001, max=0.01),
                **kw,
            )
        )
        out | beam.Map(_Collect(bucket))
    return bucket, _DEAD.get(bucket, [])


@pytest.mark.parametrize("fmt", ["jsonl", "avro", "parquet"])
def test_objects_hold_every_event_once(fmt):
    bucket, dead = _run(_events(250), fmt=fmt, prefix="orders/{type}/{yyyy}/{mm}/{dd}")
    assert dead == []
    objects = _STORES[bucket]
    assert objects, "nothing written"
    assert all(k.startswith("orders/com.example.order/2026/11/25/part-") for k in objects)
    assert all(k.endswith("." + fmt) for k in objects)
    ids = [r["id"] for raw in objects.values() for r in read_rows(fmt, raw)]
    assert sorted(ids, key=int) == [str(i) for i in range(250)]


def test_roll_over_at_max_events_and_names_are_deterministic():
    first, _ = _run(_events(95), prefix="p", max_events=10)
    second, _ = _run(_events(95), prefix="p", max_events=10)
    sizes = sorted(len(read_rows("jsonl", raw)) for raw in _STORES[first].values())
    assert sum(sizes) == 95
    assert max(sizes) <= 10
    # The same events in the same bundles: the same object names, so a replay overwrites.
    assert set(_STORES[first]) == set(_STORES[second])


def test_roll_over_at_max_bytes():
    bucket, _ = _run(_events(1000), prefix="", max_bytes=4096)
    objects = _STORES[bucket]
    one = max(len(line) + 1 for raw in objects.values() for line in raw.splitlines())
    # The size is checked every 64 events: an object ends within 64 events of max_bytes.
    assert len(objects) >= 1000 // 64 - 1
    assert all(len(raw) < 4096 + 64 * one for raw in objects.values())
    assert sum(len(read_rows("jsonl", raw)) for raw in objects.values()) == 1000


def test_transient_failures_are_retried():
    bucket, dead = _run(_events(20), prefix="x", fail=2)
    assert dead == []
    assert sum(len(read_rows("jsonl", raw)) for raw in _STORES[bucket].values()) == 20


def test_a_store_that_keeps_failing_dead_letters_every_event_with_the_reason():
    bucket, dead = _run(_events(20), prefix="x", fail=-1)
    assert bucket not in _STORES
    assert sorted(e.attributes["id"] for e in dead) == sorted(str(i) for i in range(20))
    assert {e.attributes["meshlineerrorstage"] for e in dead} == {"deliver"}
    assert all("503 SlowDown" in e.attributes["meshlineerror"] for e in dead)


def test_a_permanent_failure_is_not_retried():
    bucket, dead = _run(_events(3), prefix="x", permanent=True)
    assert len(dead) == 3
    assert "AccessDenied" in dead[0].attributes["meshlineerror"]
    assert next(_FAILS[bucket]) == 1  # one attempt (this call is the second)


def test_an_event_the_format_cannot_encode_is_dead_lettered_alone():
    events = _events(3)
    events.append(
        CloudEvent({"specversion": "1.0", "id": "bad", "source": "/o", "type": "t"}, {"x": 1 << 70})
    )
    bucket, dead = _run(events, prefix="x")
    assert [e.attributes["id"] for e in dead] == ["bad"]
    assert "cannot encode" in dead[0].attributes["meshlineerror"]
    assert sum(len(read_rows("jsonl", raw)) for raw in _STORES[bucket].values()) == 3


def test_windows_name_objects_by_their_start():
    bucket = uuid.uuid4().hex
    stream = TestStream().advance_watermark_to(0)
    for i, t in enumerate((5, 20, 65, 70)):
        stream = stream.add_elements(
            [
                beam.window.TimestampedValue(
                    CloudEvent({"specversion": "1.0", "id": str(i), "source": "/s", "type": "t"}, i), t
                )
            ]
        )
    stream = stream.advance_watermark_to_infinity()
    options = PipelineOptions(streaming=True)
    with beam.Pipeline(options=options) as p:
        dead = (
            p | stream | WriteObjects(_Make(bucket), prefix="w", format="jsonl", target_name="t", window=60)
        )
        assert_that(dead, equal_to([]))
    by_window: dict[str, set[str]] = {}
    for key, raw in _STORES[bucket].items():
        tag = key.split("/")[-1].split("-")[1]
        by_window.setdefault(tag, set()).update(r["id"] for r in read_rows("jsonl", raw))
    assert by_window == {"19700101T000000": {"0", "1"}, "19700101T000100": {"2", "3"}}


def test_commit_window_writes_one_object_per_shard_with_stable_names():
    first, dead = _run(_events(300), prefix="s", commit="window", shards=3)
    second, _ = _run(list(reversed(_events(300))), prefix="s", commit="window", shards=3)
    assert dead == []
    assert sorted(_STORES[first]) == [f"s/part-{i:05d}-of-00003.jsonl" for i in range(3)]
    assert _STORES[first] == _STORES[second]  # same names and the same bytes, whatever the order
    ids = [r["id"] for raw in _STORES[first].values() for r in read_rows("jsonl", raw)]
    assert sorted(ids, key=int) == [str(i) for i in range(300)]


def test_commit_window_rolls_over_within_a_shard():
    bucket, _ = _run(_events(25), prefix="s", commit="window", max_events=10)
    assert set(_STORES[bucket]) == {
        "s/part-00000-of-00001.jsonl",
        "s/part-00000-of-00001-001.jsonl",
        "s/part-00000-of-00001-002.jsonl",
    }


def test_auto_commit_is_window_on_flink_and_bundle_locally():
    assert (
        WriteObjects(_Make("x"), prefix="", format="jsonl", target_name="t", runner="flink")._commit
        == "window"
    )
    assert (
        WriteObjects(_Make("x"), prefix="", format="jsonl", target_name="t", runner="prism")._commit
        == "bundle"
    )
    with pytest.raises(ValueError, match="commit"):
        WriteObjects(_Make("x"), prefix="", format="jsonl", target_name="t", commit="sometimes")


def _run_at(elements, at: float, **kw) -> str:
    """Like _run, with every element at timestamp ``at`` (a batch's events share its timestamp)."""
    bucket = uuid.uuid4().hex
    with beam.Pipeline(runner="BundleBasedDirectRunner") as p:
        dead = (
            p
            | beam.Create(elements)
            | beam.Map(lambda e: beam.window.TimestampedValue(e, at))
            | WriteObjects(_Make(bucket), format="jsonl", target_name="lake", prefix="b", **kw)
        )
        assert_that(dead, equal_to([]))
    return bucket


@pytest.mark.parametrize(
    "kw",
    [{}, {"max_events": 7}, {"window": 60.0}, {"commit": "window", "shards": 2}],
    ids=["bundle", "bundle-roll-over", "windowed", "commit-window"],
)
def test_event_batches_are_written_like_their_events(kw):
    """EventBatch elements (from the router) give the same objects as the same events one by one."""
    from meshline.events import EventBatch

    events = _events(30)
    batched = _run_at([EventBatch(events[:10]), events[10], EventBatch(events[11:30])], 70.0, **kw)
    single = _run_at(events, 70.0, **kw)
    assert {k: read_rows("jsonl", v) for k, v in _STORES[batched].items()} == {
        k: read_rows("jsonl", v) for k, v in _STORES[single].items()
    }  # the same object names holding the same rows in the same order
    ids = [r["id"] for raw in _STORES[batched].values() for r in read_rows("jsonl", raw)]
    assert sorted(ids, key=int) == [str(i) for i in range(30)]
    if "window" in kw:
        assert all("part-19700101T000100" in k for k in _STORES[batched])  # the window of t=70 s


def test_object_digests_do_not_depend_on_event_order_nor_on_id_types():
    from meshline.connectors.objects_naming import keys_digest

    keys = [("s", "b"), ("s", "a"), ("t", "a")]
    assert keys_digest(keys) == keys_digest(list(reversed(keys))) != keys_digest(keys[:2])
    assert keys_digest(keys, "w1") != keys_digest(keys, "w2")  # two writers of one target
    mixed = [("s", 2), ("s", "1"), (None, "x")]  # ids a Python step set: compared as text
    as_text = [("s", "2"), ("s", "1"), ("None", "x")]
    assert keys_digest(mixed) == keys_digest(list(reversed(mixed))) == keys_digest(as_text)
