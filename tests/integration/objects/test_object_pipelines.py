"""The pipelines/ integrations of this area, run unchanged against the emulators."""

from __future__ import annotations

import orjson
import pytest

from meshline.connectors.formats import read_rows
from tests.integration.pubsub_support import PROJECT

pytestmark = pytest.mark.integration


def test_activity_logs_to_datalake(meshline, blob_storage):
    container = blob_storage.new_container()
    r = meshline(
        "run",
        "pipelines/activity-logs-to-datalake.yaml",
        "--runner",
        "direct",
        "--param",
        f"lake_connection_string={blob_storage.connection_string}",
        "--param",
        f"container={container}",
    )
    assert r.returncode == 0, r.stderr
    assert blob_storage.connection_string not in r.stderr + r.stdout
    blobs = blob_storage.blobs(container)
    audit = [row for n, raw in blobs.items() if n.startswith("audit/") for row in read_rows("parquet", raw)]
    assert sorted(orjson.loads(row["data"])["operationName"] for row in audit) == [
        "Microsoft.Compute/virtualMachines/delete",
        "Microsoft.Network/networkSecurityGroups/securityRules/delete",
        "Microsoft.Storage/storageAccounts/write",
    ]
    assert all(n.startswith("audit/2026/11/25/") for n in blobs if n.startswith("audit/"))
    security = [
        row for n, raw in blobs.items() if n.startswith("security/") for row in read_rows("jsonl", raw)
    ]
    assert [row["category"] for row in security] == ["Security"]
    assert not [n for n in blobs if n.startswith("dead-letters/")]


def test_gcs_to_datalake(meshline, gcs, blob_storage):
    bucket = gcs.new_bucket()
    sub = gcs.new_subscription()
    container = blob_storage.new_container()
    b = gcs.client.bucket(bucket)
    for name, body, ctype in [
        ("sales/a.csv", b"x,y\n1,2\n", "text/csv"),
        ("sales/b.json", b'{"k": 1}', "application/json"),
        ("photos/cat.jpg", b"\xff\xd8", "image/jpeg"),
    ]:
        b.blob(name).upload_from_string(body, content_type=ctype)
    b.blob("sales/a.csv").delete()
    params = {
        "project": PROJECT,
        "bucket": bucket,
        "subscription": sub,
        "gcs_endpoint": gcs.url,
        "pubsub_endpoint": gcs.pubsub_host,
        "lake_connection_string": blob_storage.connection_string,
        "container": container,
        "idle": "4s",
    }
    args = [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
    # unbounded: Prism by default; the idle timeout must end the run (a hang fails at the deadline)
    r = meshline("run", "pipelines/gcs-to-datalake.yaml", *args, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "using the prism runner" in r.stderr
    blobs = blob_storage.blobs(container)
    rows = [row for n, raw in blobs.items() if n.startswith("new/") for row in read_rows("parquet", raw)]
    catalogue = sorted((orjson.loads(row["data"]) for row in rows), key=lambda d: d["name"])
    assert [(d["bucket"], d["name"], d["size"]) for d in catalogue] == [
        (bucket, "sales/a.csv", 8),
        (bucket, "sales/b.json", 8),
    ]
    deleted = [row for n, raw in blobs.items() if n.startswith("deleted/") for row in read_rows("jsonl", raw)]
    assert [row["subject"] for row in deleted] == ["objects/sales/a.csv"]
    assert not [n for n in blobs if n.startswith("dead-letters/")]
    assert gcs.pubsub.drain(sub, wait=1.0) == []
