"""The ledger's store operations (list, get, exists, delete) against Cloud Storage and Blob servers.

The ledger lets an object target skip events a crashed run stored but did not
acknowledge (see meshline/connectors/ledger.py); the S3 and file stores are
tested end to end in tests/integration/aws/test_s3.py and tests/unit/test_ledger.py.
"""

from __future__ import annotations

import pytest

from meshline.connectors.ledger import Ledger, event_digest, ledger_root

pytestmark = pytest.mark.integration


def _round_trip(store) -> None:
    root = ledger_root("lake", "writer")
    ledger = Ledger(store, root, window=60)
    store.put("lake/part-a.jsonl", b"{}\n", "application/x-ndjson")
    ledger.record("lake/part-a.jsonl", [event_digest("q", "1"), event_digest("q", "2")])
    ledger.record("lake/part-b.jsonl", [event_digest("q", "3")])  # its object never came
    assert len(store.list_keys(root)) == 2
    assert store.get(root + "0000000000000-missing.ids") is None
    assert store.exists("lake/part-a.jsonl") and not store.exists("lake/part-b.jsonl")
    assert Ledger(store, root, window=60).load() == {event_digest("q", "1"), event_digest("q", "2")}
    store.delete(store.list_keys(root))
    assert store.list_keys(root) == []


def test_google_storage(gcs):
    from meshline.connectors.gcs.target import GcsTargetConfig, _GcsStore

    store = _GcsStore(GcsTargetConfig(bucket=gcs.new_bucket(), endpoint_url=gcs.url, project="test"))
    try:
        _round_trip(store)
    finally:
        store.close()


def test_azure_blob(blob_storage):
    from meshline.connectors.azure.datalake import DataLakeTargetConfig, _BlobStore

    config = DataLakeTargetConfig(
        connection_string=blob_storage.connection_string, container=blob_storage.new_container()
    )
    store = _BlobStore(config)
    try:
        _round_trip(store)
    finally:
        store.close()
