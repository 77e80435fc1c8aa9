"""The written-events ledger of object targets: a redelivery after a crash is not written twice.

Runs the real file target (local files) in two pipelines with the same labels, as a
rerun after a crash would: the second receives some events the first stored already,
grouped differently (a queue redelivering unacknowledged messages).
"""

from __future__ import annotations

import time
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from meshline.connectors.file import FileTargetConfig, WriteToFile, _FileStore
from meshline.connectors.formats import read_rows
from meshline.connectors.ledger import Ledger, event_digest, ledger_root
from meshline.events import CloudEvent


def _events(ids: range) -> list[CloudEvent]:
    return [
        CloudEvent({"specversion": "1.0", "type": "t", "source": "q", "id": str(i)}, {"n": i}) for i in ids
    ]


def _run(out: Path, ids: range, *, redelivering: bool = True, **config) -> None:
    cfg = FileTargetConfig(path=str(out), **config)
    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        _ = (
            p
            | "Create" >> beam.Create(_events(ids), reshuffle=False)
            | "Target[lake]" >> WriteToFile(cfg, "lake", redelivering=redelivering, integration="it")
        )


def _ids(out: Path) -> list[int]:
    """What a reader of the folder sees (hidden folders skipped, as Hive/Spark/pyarrow do)."""
    rows = []
    for f in sorted(out.rglob("*.jsonl")):
        if any(part.startswith(".") for part in f.relative_to(out).parts):
            continue
        rows += read_rows("jsonl", f.read_bytes())
    return sorted(int(r["id"]) for r in rows)


def test_a_redelivery_grouped_differently_is_not_written_twice(tmp_path):
    _run(tmp_path, range(0, 100))
    _run(tmp_path, range(50, 150))  # 50..99 were stored, then "the crash" kept them unacknowledged
    assert _ids(tmp_path) == list(range(150))
    assert list((tmp_path / ".meshline" / "ledger").rglob("*.ids"))


def test_without_a_redelivering_source_there_is_no_ledger(tmp_path):
    # a bounded source replays the same bundles: deterministic names overwrite, nothing to remember
    _run(tmp_path, range(0, 100), redelivering=False)
    _run(tmp_path, range(50, 150), redelivering=False)
    assert _ids(tmp_path) == sorted([*range(150), *range(50, 100)])  # what the ledger prevents
    assert not (tmp_path / ".meshline").exists()


def test_dedupe_window_zero_turns_it_off(tmp_path):
    _run(tmp_path, range(0, 10), dedupe_window=0)
    _run(tmp_path, range(5, 15), dedupe_window=0)
    assert len(_ids(tmp_path)) == 20
    assert not (tmp_path / ".meshline").exists()


def test_an_entry_whose_object_is_gone_is_not_trusted(tmp_path):
    # written before its object; a crash between the two (or a failed write) leaves it alone
    _run(tmp_path, range(0, 20))
    for f in tmp_path.glob("part-*.jsonl"):
        f.unlink()  # the object never arrived
    _run(tmp_path, range(0, 20))
    assert _ids(tmp_path) == list(range(20))  # written again, not skipped


def test_path_templates_keep_the_ledger_in_the_static_prefix(tmp_path):
    cfg = {"path": str(tmp_path / "orders" / "{type}")}
    for ids in (range(0, 30), range(20, 40)):
        with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
            _ = (
                p
                | "Create" >> beam.Create(_events(ids), reshuffle=False)
                | "Target[lake]" >> WriteToFile(FileTargetConfig(**cfg), "lake", redelivering=True)
            )
    assert _ids(tmp_path) == list(range(40))
    assert list((tmp_path / "orders" / ".meshline").rglob("*.ids"))


def test_load_reads_the_window_before_the_newest_entry_and_drops_older_ones(tmp_path):
    store = _FileStore(str(tmp_path))
    root = ledger_root("", "w")
    window = 60.0
    newest = int(time.time() * 1000) - 3_600_000  # the crash was an hour ago: still read
    for ms, name, ids in [
        (newest, "a.jsonl", ["1", "2"]),
        (newest - 30_000, "b.jsonl", ["3"]),  # within the window
        (newest - 90_000, "c.jsonl", ["4"]),  # older than the window: not read, kept
        (newest - 150_000, "d.jsonl", ["5"]),  # older than two windows: deleted
        (newest - 10_000, "missing.jsonl", ["6"]),  # its object was never written
    ]:
        if name != "missing.jsonl":
            store.put(name, b"{}\n", "application/x-ndjson")
        body = b'{"object": "%s"}\n' % name.encode() + b"".join(
            event_digest("q", i).to_bytes(8, "big") for i in ids
        )
        store.put(f"{root}{ms:013d}-{name.split('.')[0]}.ids", body, "application/octet-stream")
    seen = Ledger(store, root, window).load()
    assert seen == {event_digest("q", i) for i in ("1", "2", "3")}
    left = {k.rsplit("-", 1)[-1] for k in store.list_keys(root)}
    assert left == {"a.ids", "b.ids", "c.ids", "missing.ids"}


def test_a_running_writer_expires_its_own_old_entries(tmp_path):
    store = _FileStore(str(tmp_path))
    ledger = Ledger(store, ledger_root("", "w"), window=0.01)
    for i in range(3):
        ledger.record(f"o{i}", [event_digest("q", str(i))])
    assert len(store.list_keys(".meshline/")) == 3
    time.sleep(0.05)  # older than two windows, and than one window more: deleted even without a batch
    ledger.expire()
    assert store.list_keys(".meshline/") == []
