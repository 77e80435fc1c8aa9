"""The file source: globs, compression, raw lines, blank lines, broken bytes."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

import apache_beam as beam
import orjson

from meshline.compiler.testing import _COLLECTED, _Collect
from meshline.connectors.file import FileSourceConfig, ReadFromFile
from meshline.events import CloudEvent, EventBatch, each_event
from meshline.runners import in_process_runner


def _read(config: FileSourceConfig) -> tuple[list[CloudEvent], list[CloudEvent]]:
    key = uuid.uuid4().hex
    with beam.Pipeline(runner=in_process_runner()) as p:
        events, dead = p | ReadFromFile(config, "src")
        _ = events | "Each" >> beam.FlatMap(each_event) | "Good" >> _Collect(f"{key}/good")
        _ = dead | "Bad" >> _Collect(f"{key}/bad")
    return _COLLECTED.pop(f"{key}/good", []), _COLLECTED.pop(f"{key}/bad", [])


def _event(i: int) -> bytes:
    return orjson.dumps({"specversion": "1.0", "id": str(i), "source": "s", "type": "t", "data": {"i": i}})


def test_glob_over_plain_and_gzip_files(tmp_path: Path):
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(_event(i) for i in range(3)) + b"\n\n   \n")
    with gzip.open(tmp_path / "b.jsonl.gz", "wb") as fh:
        fh.write(b"\n".join(_event(i) for i in range(3, 6)))
    good, bad = _read(FileSourceConfig(path=str(tmp_path / "*.jsonl*")))
    assert sorted(e.id for e in good) == ["0", "1", "2", "3", "4", "5"]
    assert bad == []  # blank lines are not events, and not errors


def test_broken_lines_are_dead_lettered_with_position_and_raw_text(tmp_path: Path):
    f = tmp_path / "in.jsonl"
    f.write_bytes(_event(1) + b"\n{broken\n\xff\xfe not utf-8\n" + _event(2) + b"\n")
    good, bad = _read(FileSourceConfig(path=str(f)))
    assert [e.id for e in good] == ["1", "2"]
    assert [e.id for e in bad] == [f"{f}:2", f"{f}:3"]
    assert bad[0].data == "{broken" and bad[1].data == b"\xff\xfe not utf-8"
    assert all(e.attributes["meshlineerrorstage"] == "decode" for e in bad)
    assert bad[0].attributes["meshlineerror"].startswith("line 2: not valid JSON")
    assert bad[0].attributes["source"] == f"file://{f}"


def test_lines_format_wraps_each_line(tmp_path: Path):
    f = tmp_path / "log.txt"
    f.write_text("first line\nsecond — ünïcode\n")
    good, bad = _read(FileSourceConfig(path=str(f), format="lines"))
    assert [(e.id, e.type, e.data) for e in good] == [
        (f"{f}:1", "dev.meshline.file.line", "first line"),
        (f"{f}:2", "dev.meshline.file.line", "second — ünïcode"),
    ]
    assert bad == []


def test_no_match_reads_nothing_when_allowed(tmp_path: Path):
    good, bad = _read(FileSourceConfig(path=str(tmp_path / "none-*.jsonl"), allow_empty=True))
    assert good == [] and bad == []


def test_events_travel_in_batches_in_file_order(tmp_path: Path):
    from meshline.connectors.file import BATCH

    f = tmp_path / "in.jsonl"
    f.write_bytes(b"\n".join(_event(i) for i in range(2 * BATCH + 1)) + b"\n")
    key = uuid.uuid4().hex
    with beam.Pipeline(runner=in_process_runner()) as p:
        events, _ = p | ReadFromFile(FileSourceConfig(path=str(f)), "src")
        _ = events | "Elements" >> _Collect(key)
    elements = _COLLECTED.pop(key, [])
    # two full batches, then the last event alone (not a batch of one)
    assert [type(e).__name__ for e in elements] == ["EventBatch", "EventBatch", "CloudEvent"]
    assert all(len(b) == BATCH for b in elements[:2] if isinstance(b, EventBatch))
    ids = [e.id for element in elements for e in each_event(element)]
    assert ids == [str(i) for i in range(2 * BATCH + 1)]


def test_bad_and_blank_lines_after_the_first_batch_keep_their_line_numbers(tmp_path: Path):
    from meshline.connectors.file import BATCH

    lines = [_event(i) for i in range(2 * BATCH + 5)]
    lines[BATCH + 2] = b"{broken"  # line BATCH + 3
    lines[BATCH + 4] = b"   "  # a blank line: neither an event nor an error
    f = tmp_path / "in.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    good, bad = _read(FileSourceConfig(path=str(f)))
    assert [e.id for e in good] == [str(i) for i in range(2 * BATCH + 5) if i not in (BATCH + 2, BATCH + 4)]
    assert [e.id for e in bad] == [f"{f}:{BATCH + 3}"]
    assert bad[0].attributes["meshlineerror"].startswith(f"line {BATCH + 3}: not valid JSON")
    assert bad[0].data == "{broken"


def test_preflight_refuses_a_path_that_matches_nothing(tmp_path):
    from meshline.connectors import file

    assert file.preflight(FileSourceConfig(path=str(tmp_path / "none-*.jsonl"))) == [
        ("path", file._no_match(str(tmp_path / "none-*.jsonl")))
    ]
    (tmp_path / "a.jsonl").write_text("{}\n")
    assert file.preflight(FileSourceConfig(path=str(tmp_path / "*.jsonl"))) == []


def test_preflight_leaves_a_filesystem_that_does_not_answer_to_the_workers(monkeypatch):
    """An unreachable bucket: the client retries for minutes; the run does not wait for it."""
    import threading
    import time

    from meshline.connectors import file

    release = threading.Event()
    monkeypatch.setattr(file, "_matches", lambda pattern: release.wait(30) and [])
    t0 = time.monotonic()
    try:
        assert file.preflight(FileSourceConfig(path="gs://unreachable/x.jsonl"), timeout=0.3) == []
        assert time.monotonic() - t0 < 5
    finally:
        release.set()
