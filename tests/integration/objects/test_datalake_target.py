"""azure.datalake target against azurite (Blob API): formats, replays, windows, failures."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from meshline.connectors.formats import event_row, read_rows
from meshline.events import CloudEvent, from_json
from tests.harness import free_port, rows_in
from tests.integration.pubsub_support import PROJECT, PubSub

pytestmark = pytest.mark.integration

FORMATS = ("jsonl", "avro", "parquet")


def _events(n: int = 300) -> list[CloudEvent]:
    out = []
    for i in range(n):
        attrs = {
            "specversion": "1.0",
            "id": f"e-{i}",
            "source": "/orders",
            "type": ("order.created", "order.paid", "order.shipped")[i % 3],
            "time": "2026-11-25T10:15:00Z",
            "datacontenttype": "application/json",
        }
        if i % 10 == 0:
            attrs["region"] = "eu"
        data: object = {"n": i, "amount": i * 1.5, "tags": ["a", str(i)]}
        if i % 50 == 7:
            data = bytes([i % 256, 0, 255])
            attrs.pop("datacontenttype")
        out.append(CloudEvent(attrs, data))
    return out


def _write_input(path: Path, events: list[CloudEvent]) -> None:
    path.write_bytes(b"".join(orjson.dumps(e.to_dict()) + b"\n" for e in events))


def _spec(path: Path, source: str, targets: str, triggers: str) -> Path:
    path.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: datalake-it}}
spec:
  sources:
{source}
  targets:
{targets}
    - {{name: dlq, type: file, config: {{path: "{path.parent}/dlq"}}}}
  triggers:
{triggers}
  deadLetter: dlq
""")
    return path


def _target(name: str, blob, container: str, prefix: str, fmt: str, extra: str = "") -> str:
    return f"""    - name: {name}
      type: azure.datalake
      config:
        connection_string: "{blob.connection_string}"
        container: {container}
        prefix: "{prefix}"
        format: {fmt}
{extra}"""


def _rows(blobs: dict[str, bytes], prefix: str, fmt: str) -> list[dict]:
    return [r for name, raw in blobs.items() if name.startswith(prefix) for r in read_rows(fmt, raw)]


def _dlq(folder: Path) -> list[dict]:
    return rows_in(folder)


def test_objects_read_back_equal_the_events_and_a_replay_adds_none(meshline, blob_storage, tmp_path):
    events = _events()
    _write_input(tmp_path / "in.jsonl", events)
    container = blob_storage.new_container()
    source = f'    - {{name: in, type: file, config: {{path: "{tmp_path}/in.jsonl"}}}}'
    targets = "".join(_target(f, blob_storage, container, f"{f}/{{type}}", f) for f in FORMATS)
    # One big object, written as 16 KiB blocks (above a 32 KiB single-request limit).
    small = "        max_single_put_size: 32768\n        max_block_size: 16384\n"
    targets += _target("blocks", blob_storage, container, "blocks", "jsonl", small)
    triggers = "\n".join(f"    - {{name: to-{f}, target: {f}}}" for f in (*FORMATS, "blocks"))
    spec = _spec(tmp_path / "it.yaml", source, targets, triggers)
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    blobs = blob_storage.blobs(container)
    by_id = {e.attributes["id"]: e for e in events}
    for fmt in FORMATS:
        rows = _rows(blobs, f"{fmt}/", fmt)
        assert len(rows) == len(events), fmt
        if fmt == "jsonl":
            assert sorted(rows, key=lambda r: r["id"]) == sorted(
                (e.to_dict() for e in events), key=lambda r: r["id"]
            )
            assert {from_json(orjson.dumps(r)).data == by_id[r["id"]].data for r in rows} == {True}
        else:
            assert sorted(rows, key=lambda r: r["id"]) == sorted(
                (event_row(e) for e in events), key=lambda r: r["id"]
            )
        # {type} in the prefix: one directory per event type, every row in its own
        for name, raw in blobs.items():
            if name.startswith(f"{fmt}/"):
                kind = name.split("/")[1]
                assert {row["type"] for row in read_rows(fmt, raw)} == {kind}
                assert name.endswith("." + fmt)
    big = [name for name in blobs if name.startswith("blocks/")]
    assert len(big) == 1 and len(blobs[big[0]]) > 32768
    assert sorted(r["id"] for r in read_rows("jsonl", blobs[big[0]])) == sorted(by_id)
    committed, _ = blob_storage.client.get_blob_client(container, big[0]).get_block_list()
    assert len(committed) == -(-len(blobs[big[0]]) // 16384)
    assert not _dlq(tmp_path / "dlq")

    # Replaying the same input writes the same object names: nothing is duplicated.
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    again = blob_storage.blobs(container)
    assert sorted(again) == sorted(blobs)
    for fmt in FORMATS:
        assert len(_rows(again, f"{fmt}/", fmt)) == len(events)


def test_windowed_streaming_on_prism_writes_per_window_objects(meshline, blob_storage, pubsub_host, tmp_path):
    ps = PubSub(pubsub_host)
    topic, sub = ps.new_subscription(ack_deadline=30)
    ids: list[str] = []
    for batch in range(3):  # three bursts, each in its own 2-second window
        ids += ps.publish(topic, [(orjson.dumps({"batch": batch, "i": i}), {}) for i in range(20)])
        time.sleep(2.5)
    container = blob_storage.new_container()
    source = f"""    - name: in
      type: google.pubsub
      config: {{project: {PROJECT}, subscription: {sub}, endpoint_url: "{pubsub_host}", idle_timeout: 5s}}"""
    targets = _target("lake", blob_storage, container, "stream", "parquet", "        window: 2s\n")
    spec = _spec(tmp_path / "it.yaml", source, targets, "    - {name: all, target: lake}")
    r = meshline("run", str(spec), "--runner", "prism", timeout=600)
    assert r.returncode == 0, r.stderr
    blobs = blob_storage.blobs(container)
    rows = _rows(blobs, "stream/", "parquet")
    assert sorted(row["id"] for row in rows) == sorted(ids)
    windows = {name.split("/")[-1].split("-")[1] for name in blobs}
    assert len(windows) >= 3, sorted(blobs)  # part-YYYYMMDDTHHMMSS-DIGEST.parquet, one per window at least
    for name, raw in blobs.items():  # each object holds only its window's burst
        assert len({orjson.loads(row["data"])["batch"] for row in read_rows("parquet", raw)}) == 1, name
    assert ps.drain(sub, wait=1.0) == []


def test_missing_container_dead_letters_with_the_reason(meshline, blob_storage, tmp_path):
    events = _events(12)
    _write_input(tmp_path / "in.jsonl", events)
    source = f'    - {{name: in, type: file, config: {{path: "{tmp_path}/in.jsonl"}}}}'
    targets = _target("lake", blob_storage, "no-such-container", "x", "jsonl")
    spec = _spec(tmp_path / "it.yaml", source, targets, "    - {name: all, target: lake}")
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    dlq = _dlq(tmp_path / "dlq")
    assert sorted(e["id"] for e in dlq) == sorted(e.attributes["id"] for e in events)
    assert {e["meshlineerrorstage"] for e in dlq} == {"deliver"}
    assert "container 'no-such-container' does not exist" in dlq[0]["meshlineerror"]
    assert "AccountKey" not in r.stderr and "Eby8" not in r.stderr and "Eby8" not in str(dlq)


def test_unreachable_endpoint_dead_letters_after_retries(meshline, blob_storage, tmp_path):
    events = _events(5)
    _write_input(tmp_path / "in.jsonl", events)
    source = f'    - {{name: in, type: file, config: {{path: "{tmp_path}/in.jsonl"}}}}'
    dead_url = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    targets = _target(
        "lake",
        blob_storage,
        "anything",
        "x",
        "jsonl",
        f'        endpoint_url: "{dead_url}"\n        timeout: 2s\n',
    )
    triggers = (
        "    - {name: all, target: lake, delivery: {retries: 2, backoff: {policy: constant, delay: 100ms}}}"
    )
    spec = _spec(tmp_path / "it.yaml", source, targets, triggers)
    r = meshline("run", str(spec), "--runner", "direct", timeout=120)  # retries end; no hang
    assert r.returncode == 0, r.stderr
    dlq = _dlq(tmp_path / "dlq")
    assert sorted(e["id"] for e in dlq) == sorted(e.attributes["id"] for e in events)
    assert "connection to the Blob endpoint failed" in dlq[0]["meshlineerror"]
