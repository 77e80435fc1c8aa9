"""google.storage target against fake-gcs-server: formats read back, replay, missing bucket."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from meshline.connectors.formats import event_row, read_rows
from meshline.events import CloudEvent
from tests.harness import rows_in

pytestmark = pytest.mark.integration

FORMATS = ("jsonl", "avro", "parquet")


def _events(n: int) -> list[CloudEvent]:
    return [
        CloudEvent(
            {
                "specversion": "1.0",
                "id": f"g-{i}",
                "source": "/sensors",
                "type": ("reading", "alarm")[i % 2],
                "time": "2026-11-25T08:00:00Z",
            },
            {"i": i, "v": i / 3},
        )
        for i in range(n)
    ]


def _spec(path: Path, gcs, bucket: str, inp: Path, formats: tuple[str, ...] = FORMATS) -> Path:
    targets = "".join(
        f"""    - name: {f}
      type: google.storage
      config:
        bucket: {bucket}
        prefix: "{f}/{{yyyy}}/{{mm}}/{{dd}}/{{type}}"
        format: {f}
        endpoint_url: "{gcs.url}"
"""
        for f in formats
    )
    triggers = "".join(f"    - {{name: to-{f}, target: {f}}}\n" for f in formats)
    path.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: gcs-target-it}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{inp}"}}}}
  targets:
{targets}    - {{name: dlq, type: file, config: {{path: "{path.parent}/dlq"}}}}
  triggers:
{triggers}  deadLetter: dlq
""")
    return path


def _objects(gcs, bucket: str) -> dict[str, bytes]:
    # without the ledger of a target (.meshline/, as data readers skip it)
    blobs = gcs.client.list_blobs(bucket)
    return {b.name: b.download_as_bytes() for b in blobs if ".meshline/" not in b.name}


def test_objects_read_back_equal_the_events_and_a_replay_adds_none(meshline, gcs, tmp_path):
    events = _events(200)
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b"".join(orjson.dumps(e.to_dict()) + b"\n" for e in events))
    bucket = gcs.new_bucket()
    spec = _spec(tmp_path / "it.yaml", gcs, bucket, inp)
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    objects = _objects(gcs, bucket)
    for fmt in FORMATS:
        rows = [
            row for name, raw in objects.items() if name.startswith(f"{fmt}/") for row in read_rows(fmt, raw)
        ]
        expected = [e.to_dict() if fmt == "jsonl" else event_row(e) for e in events]
        assert sorted(rows, key=lambda r: r["id"]) == sorted(expected, key=lambda r: r["id"]), fmt
        assert {name.rsplit("/", 2)[0] for name in objects if name.startswith(f"{fmt}/")} == {
            f"{fmt}/2026/11/25"
        }
        assert {name.split("/")[4] for name in objects if name.startswith(f"{fmt}/")} == {"reading", "alarm"}
    assert not list((tmp_path / "dlq").rglob("*.jsonl"))
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    assert sorted(_objects(gcs, bucket)) == sorted(objects)  # same names: overwritten, not duplicated


def test_missing_bucket_dead_letters_every_event(meshline, gcs, tmp_path):
    events = _events(7)
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b"".join(orjson.dumps(e.to_dict()) + b"\n" for e in events))
    spec = _spec(tmp_path / "it.yaml", gcs, "no-such-bucket", inp, formats=("parquet",))
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    dlq = rows_in(tmp_path / "dlq")
    assert sorted(e["id"] for e in dlq) == sorted(e.attributes["id"] for e in events)
    assert {e["meshlineerrorstage"] for e in dlq} == {"deliver"}
    reason = dlq[0]["meshlineerror"]
    assert "bucket 'no-such-bucket'" in reason and "NotFound" in reason, reason
