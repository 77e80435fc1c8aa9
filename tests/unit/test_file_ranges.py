"""The file source reads a large file in byte ranges: every line once, with its own line number."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import apache_beam as beam
import orjson
import pytest

from meshline.compiler.testing import _COLLECTED, _Collect
from meshline.connectors import file
from meshline.connectors.file import FileSourceConfig, ReadFromFile
from meshline.events import CloudEvent, each_event
from meshline.runners import in_process_runner


def _read_ranges(path: Path, fmt: str, seekable: bool = True) -> list[tuple[int, bytes]]:
    """(line number, raw line) of every line the ranges of ``path`` hold, range after range."""
    out: list[tuple[int, bytes]] = []
    for p, start, end, before in file._ranges(str(path), path.stat().st_size, fmt):
        fh = file._big_buffer(open(p, "rb"))  # noqa: SIM115 (closed below)
        try:
            if not seekable:
                fh.seekable = lambda: False
            lines = fh if (start == 0 and end is None) else file._lines_of_range(fh, iter(fh), start, end)
            first = before if before >= 0 else file._lines_before(p, start)
            out += list(enumerate(lines, first + 1))
        finally:
            fh.close()
    return out


@pytest.mark.parametrize("seekable", [True, False], ids=["seek", "no-seek"])
def test_ranges_hold_every_line_once_with_its_number(tmp_path: Path, monkeypatch, seekable: bool):
    rng = random.Random(7)
    for trial in range(150):
        lines = [
            bytes(rng.choice(b"ab \r") for _ in range(rng.choice([0, 1, 2, 5, 30, 90]))) for _ in range(60)
        ]
        data = b"\n".join(lines[: rng.randrange(0, 60)]) + rng.choice([b"", b"\n"])
        path = tmp_path / f"{trial}.txt"
        path.write_bytes(data)
        monkeypatch.setattr(file, "SPLIT_MIN", rng.choice([1, 2, 3, 7, 16]))
        monkeypatch.setattr(file, "SPLIT_PARTS", rng.choice([1, 3, 8, 100]))
        with path.open("rb") as fh:
            whole = list(enumerate(fh, 1))
        for fmt in ("lines", "cloudevents"):
            assert _read_ranges(path, fmt, seekable) == whole, (trial, fmt, data)


def test_range_sizes(tmp_path: Path):
    mib = 1 << 20
    assert file._range_size(1) == file.SPLIT_MIN == 8 * mib  # small files: one range
    assert file._range_size(1024 * mib) == 32 * mib  # 32 ranges
    assert file._range_size(10 * 1024 * mib) == file.SPLIT_MAX == 64 * mib
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"x\n")
    ranges = file._ranges(str(path), 100 * mib, "cloudevents")
    assert [(s, e) for _, s, e, _ in ranges] == [(i * 8 * mib, (i + 1) * 8 * mib) for i in range(12)] + [
        (96 * mib, None)
    ]
    assert [before for *_, before in ranges] == [0] + [-1] * 12  # counted only for a dead letter
    # compressed files cannot be entered in the middle; remote files in the lines format are
    # not counted twice
    assert file._ranges(str(path) + ".gz", 100 * mib, "cloudevents") == [(str(path) + ".gz", 0, None, 0)]
    assert file._ranges("gs://b/big.txt", 100 * mib, "lines") == [("gs://b/big.txt", 0, None, 0)]


def _event(i: int) -> bytes:
    return orjson.dumps({"specversion": "1.0", "id": str(i), "source": "s", "type": "t", "data": {"i": i}})


def _read(config: FileSourceConfig) -> tuple[list[CloudEvent], list[CloudEvent]]:
    key = uuid.uuid4().hex
    with beam.Pipeline(runner=in_process_runner()) as p:
        events, dead = p | ReadFromFile(config, "src")
        _ = events | "Each" >> beam.FlatMap(each_event) | "Good" >> _Collect(f"{key}/good")
        _ = dead | "Bad" >> _Collect(f"{key}/bad")
    return _COLLECTED.pop(f"{key}/good", []), _COLLECTED.pop(f"{key}/bad", [])


def test_a_split_file_reads_as_the_whole_file_did(tmp_path: Path, monkeypatch):
    lines = [_event(i) for i in range(500)]
    for n in (3, 170, 171, 402):  # dead letters in several ranges: their ids and reasons name the line
        lines[n - 1] = b"{broken %d" % n
    lines[250] = b"   "  # blank: neither an event nor an error, but a line
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    whole_good, whole_bad = _read(FileSourceConfig(path=str(path)))
    monkeypatch.setattr(file, "SPLIT_MIN", 997)  # ~40 ranges, cutting lines anywhere
    assert len(file._ranges(str(path), path.stat().st_size, "cloudevents")) > 30
    good, bad = _read(FileSourceConfig(path=str(path)))
    assert sorted(e.id for e in good) == sorted(e.id for e in whole_good)
    assert len(good) == 495
    assert sorted((e.id, e.attributes["meshlineerror"], e.data) for e in bad) == sorted(
        (e.id, e.attributes["meshlineerror"], e.data) for e in whole_bad
    )
    assert sorted(e.id for e in bad) == sorted(f"{path}:{n}" for n in (3, 170, 171, 402))
    assert all(e.attributes["meshlineerror"].startswith(f"line {e.id.rsplit(':', 1)[1]}: ") for e in bad)


def test_a_split_file_in_the_lines_format_keeps_every_line_number(tmp_path: Path, monkeypatch):
    path = tmp_path / "log.txt"
    text = "".join(f"line {i} {'é' * (i % 7)}\n" if i % 50 else "\n" for i in range(1, 1001))
    path.write_text(text, encoding="utf-8")
    whole, _ = _read(FileSourceConfig(path=str(path), format="lines"))
    monkeypatch.setattr(file, "SPLIT_MIN", 1000)
    assert len(file._ranges(str(path), path.stat().st_size, "lines")) > 10
    split, bad = _read(FileSourceConfig(path=str(path), format="lines"))
    assert bad == []
    assert sorted((e.id, e.data) for e in split) == sorted((e.id, e.data) for e in whole)
    assert {e.id: e.data for e in split}[f"{path}:999"] == "line 999 " + "é" * (999 % 7)
    assert len(split) == 980  # every 50th line is blank
