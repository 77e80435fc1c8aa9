"""google.storage source against fake-gcs-server + the Pub/Sub emulator: notifications and polling."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.harness import rows_in
from tests.integration.objects.conftest import GCS_TOPIC
from tests.integration.pubsub_support import PROJECT

pytestmark = pytest.mark.integration

FINALIZE = "com.google.cloud.storage.objectfinalize"


def _integration(path: Path, gcs, bucket: str, out: Path, config: str, crash: bool = False) -> Path:
    # crash: a step that kills the meshline process (SIGKILL) mid-bundle, before the runner
    # commits anything. Steps run in a child of a fork server of meshline: its grandparent.
    code = (
        "import os, signal\\n"
        "def handle(e):\\n"
        "    parent = open(f'/proc/{os.getppid()}/stat').read().rsplit(')', 1)[1].split()[1]\\n"
        "    os.kill(int(parent), signal.SIGKILL)"
    )
    step = (
        f'\n  transformations:\n    - {{name: crash, type: python, config: {{code: "{code}"}}}}'
        if crash
        else ""
    )
    steps = ", steps: [crash]" if crash else ""
    path.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: gcs-it}}
spec:
  sources:
    - name: bucket
      type: google.storage
      config:
        bucket: {bucket}
        project: {PROJECT}
        endpoint_url: "{gcs.url}"
        pubsub_endpoint_url: "{gcs.pubsub_host}"
{config}
  targets:
    - {{name: out, type: file, config: {{path: "{out}/events"}}}}
    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}{step}
  triggers:
    - {{name: all, target: out{steps}}}
  deadLetter: dlq
""")
    return path


def _rows(folder: Path) -> list[dict]:
    return rows_in(folder)


def _upload(gcs, bucket: str, names: list[str], body: bytes = b'{"v": 1}') -> None:
    b = gcs.client.bucket(bucket)
    for name in names:
        b.blob(name).upload_from_string(body, content_type="application/json")


def test_500_uploads_give_500_finalize_events_filtered_and_acknowledged(meshline, gcs, tmp_path):
    bucket = gcs.new_bucket()
    sub = gcs.new_subscription(ack_deadline=10)
    names = [f"in/{i:04d}.json" for i in range(500)]
    _upload(gcs, bucket, names)
    _upload(gcs, bucket, ["other/skip.json"])  # outside object_name_prefix
    gcs.client.bucket(bucket).blob("in/0000.json").delete()  # OBJECT_DELETE: not in event_types
    other = gcs.new_bucket()
    _upload(gcs, other, ["in/elsewhere.json"])  # another bucket on the shared topic
    topic = gcs.pubsub.publisher.topic_path(PROJECT, GCS_TOPIC)
    broken = {
        "eventType": "OBJECT_FINALIZE",
        "bucketId": bucket,
        "objectId": "in/broken",
        "payloadFormat": "JSON_API_V1",
    }
    gcs.pubsub.publish(topic, [(b"{not json", broken)])
    out = tmp_path / "out"
    config = f"""        subscription: {sub}
        event_types: [OBJECT_FINALIZE]
        object_name_prefix: in/
        idle_timeout: 4s"""
    r = meshline(
        "run", str(_integration(tmp_path / "it.yaml", gcs, bucket, out, config)), "--runner", "direct"
    )
    assert r.returncode == 0, r.stderr
    events = _rows(out / "events")
    assert len(events) == 500
    assert {e["type"] for e in events} == {FINALIZE}
    assert sorted(e["subject"] for e in events) == [f"objects/{n}" for n in names]
    assert {e["source"] for e in events} == {f"//storage.googleapis.com/projects/_/buckets/{bucket}"}
    assert len({e["id"] for e in events}) == 500
    one = next(e for e in events if e["subject"] == "objects/in/0007.json")
    assert (
        one["data"]["name"] == "in/0007.json"
        and one["data"]["bucket"] == bucket
        and one["data"]["size"] == "8"
    )
    dlq = _rows(out / "dlq")
    assert (
        len(dlq) == 1 and dlq[0]["meshlineerrorstage"] == "decode" and "not JSON" in dlq[0]["meshlineerror"]
    )
    time.sleep(11)  # past the ack deadline: anything not acknowledged would come back now
    assert gcs.pubsub.drain(sub) == []


def test_download_small_objects_and_deletions(meshline, gcs, tmp_path):
    bucket = gcs.new_bucket()
    sub = gcs.new_subscription()
    _upload(gcs, bucket, ["small.txt"], body=b"hello")
    _upload(gcs, bucket, ["tiny.bin"], body=b"\xff\x00")
    _upload(gcs, bucket, ["big.bin"], body=b"\xff" * 64)
    _upload(gcs, bucket, ["gone.txt"], body=b"bye")
    gcs.client.bucket(bucket).blob("gone.txt").delete()
    out = tmp_path / "out"
    config = f"""        subscription: {sub}
        download: true
        download_max_bytes: 32
        max_events: 5
        idle_timeout: 15s"""
    r = meshline(
        "run", str(_integration(tmp_path / "it.yaml", gcs, bucket, out, config)), "--runner", "direct"
    )
    assert r.returncode == 0, r.stderr
    events = {(e["type"].rsplit(".", 1)[1], e["subject"]): e["data"] for e in _rows(out / "events")}
    assert sorted(events) == [
        ("objectdelete", "objects/gone.txt"),
        ("objectfinalize", "objects/big.bin"),
        ("objectfinalize", "objects/gone.txt"),
        ("objectfinalize", "objects/small.txt"),
        ("objectfinalize", "objects/tiny.bin"),
    ]
    assert events[("objectfinalize", "objects/small.txt")]["content"] == "hello"
    assert events[("objectfinalize", "objects/tiny.bin")]["content_base64"] == "/wA="
    big = events[("objectfinalize", "objects/big.bin")]  # over download_max_bytes: metadata only
    assert "content" not in big and "content_base64" not in big and big["size"] == "64"
    # Deleted before the source saw its finalize: the metadata still tells what happened.
    gone = events[("objectfinalize", "objects/gone.txt")]
    assert gone["name"] == "gone.txt" and "content" not in gone


def test_poll_emits_each_object_once_across_restarts(meshline, gcs, tmp_path):
    bucket = gcs.new_bucket()
    names = [f"p/{i:04d}.json" for i in range(500)]
    _upload(gcs, bucket, names)
    config = """        mode: poll
        poll_interval: 1s
        idle_timeout: 3s"""
    out1 = tmp_path / "run1"
    r = meshline(
        "run", str(_integration(tmp_path / "a.yaml", gcs, bucket, out1, config)), "--runner", "direct"
    )
    assert r.returncode == 0, r.stderr
    first = _rows(out1 / "events")
    assert len(first) == 500 and {e["type"] for e in first} == {FINALIZE}
    assert sorted(e["subject"] for e in first) == [f"objects/{n}" for n in names]
    # The state object lives in the bucket and is not itself an event.
    state = gcs.client.bucket(bucket).blob(".meshline/gcs-it/bucket.state.json")
    assert state.exists()

    out2 = tmp_path / "run2"  # a restart: nothing new, nothing re-emitted
    r = meshline(
        "run", str(_integration(tmp_path / "b.yaml", gcs, bucket, out2, config)), "--runner", "direct"
    )
    assert r.returncode == 0, r.stderr
    assert _rows(out2 / "events") == []

    _upload(gcs, bucket, ["p/new-1.json", "p/new-2.json"])
    _upload(gcs, bucket, ["p/0003.json"], body=b'{"v": 2}')  # a new generation is a new finalize
    out3 = tmp_path / "run3"  # streaming on Prism (the default for an unbounded source)
    r = meshline("run", str(_integration(tmp_path / "c.yaml", gcs, bucket, out3, config)), timeout=600)
    assert r.returncode == 0, r.stderr
    assert "using the prism runner" in r.stderr
    assert sorted(e["subject"] for e in _rows(out3 / "events")) == [
        "objects/p/0003.json",
        "objects/p/new-1.json",
        "objects/p/new-2.json",
    ]
    out4 = tmp_path / "run4"  # Prism's bundle finalizer recorded them too
    r = meshline(
        "run", str(_integration(tmp_path / "d.yaml", gcs, bucket, out4, config)), "--runner", "direct"
    )
    assert r.returncode == 0, r.stderr
    assert _rows(out4 / "events") == []


def test_poll_with_a_local_state_file_and_a_crash(meshline, gcs, tmp_path):
    bucket = gcs.new_bucket()
    _upload(gcs, bucket, [f"x/{i}.json" for i in range(20)])
    state = tmp_path / "state" / "gcs.json"
    config = f"""        mode: poll
        poll_interval: 1s
        idle_timeout: 3s
        state_path: "{state}"
"""
    r = meshline(
        "run",
        str(_integration(tmp_path / "a.yaml", gcs, bucket, tmp_path / "x", config, crash=True)),
        "--runner",
        "direct",
    )
    assert r.returncode == -9, r.stderr  # killed mid-bundle: the state must not record anything
    assert not state.exists() or '"x/' not in state.read_text()
    out = tmp_path / "out"
    r = meshline(
        "run", str(_integration(tmp_path / "b.yaml", gcs, bucket, out, config)), "--runner", "direct"
    )
    assert r.returncode == 0, r.stderr
    assert len(_rows(out / "events")) == 20
    assert state.exists()
    assert not gcs.client.bucket(bucket).blob(".meshline/gcs-it/bucket.state.json").exists()
