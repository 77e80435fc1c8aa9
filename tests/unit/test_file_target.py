"""The file target: formats, path templates, windows, deterministic names, and no leftovers."""

from __future__ import annotations

import re
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that
from apache_beam.transforms.window import GlobalWindow, TimestampedValue

from meshline.connectors.delivery import RetryPolicy
from meshline.connectors.file import FileTargetConfig, WriteToFile
from meshline.connectors.formats import read_rows
from meshline.events import CloudEvent
from meshline.runners import in_process_runner

_NO_RETRY = RetryPolicy(retries=1, delay=0.001, max=0.001)


def ev(i: int, type_: str = "a.b", time: str = "2026-11-25T10:15:00Z") -> CloudEvent:
    return CloudEvent(
        {"specversion": "1.0", "id": str(i), "source": "s", "type": type_, "time": time}, {"i": i}
    )


def _write(events, config: FileTargetConfig) -> None:
    with beam.Pipeline(runner=in_process_runner()) as p:
        _ = p | beam.Create(events) | WriteToFile(config, "t")


@pytest.mark.parametrize("fmt", ["jsonl", "avro", "parquet"])
def test_formats_hold_every_event(tmp_path: Path, fmt: str):
    events = [ev(i) for i in range(50)] + [
        CloudEvent.create(id="bin", source="s", type="x", data=b"\x00\x01")
    ]
    _write(events, FileTargetConfig(path=str(tmp_path), format=fmt))
    rows = [r for f in tmp_path.glob(f"*.{fmt}") for r in read_rows(fmt, f.read_bytes())]
    assert sorted(r["id"] for r in rows) == sorted(e.id for e in events)
    assert not list(tmp_path.rglob(".*.tmp"))  # no temporary file left behind


def test_path_template_uses_event_time_and_type(tmp_path: Path):
    events = [ev(1, "a.b", "2026-01-02T03:04:05Z"), ev(2, "c/d", "2026-01-02T05:00:00+02:00")]
    _write(events, FileTargetConfig(path=f"{tmp_path}/{{type}}/{{yyyy}}/{{mm}}/{{dd}}/{{HH}}"))
    files = sorted(str(f.relative_to(tmp_path)) for f in tmp_path.rglob("*.jsonl"))
    assert [f.rsplit("/", 1)[0] for f in files] == ["a.b/2026/01/02/03", "c_d/2026/01/02/03"]
    assert all(re.fullmatch(r"part-[0-9a-f]{20}\.jsonl", f.rsplit("/", 1)[1]) for f in files)


def test_a_rerun_overwrites_instead_of_duplicating(tmp_path: Path):
    events = [ev(i) for i in range(10)]
    cfg = FileTargetConfig(path=str(tmp_path))
    _write(events, cfg)
    _write(events, cfg)
    rows = [r for f in tmp_path.glob("*.jsonl") for r in read_rows("jsonl", f.read_bytes())]
    assert len(rows) == 10


def test_windows_roll_over_into_their_own_files(tmp_path: Path):
    stamped = [(ev(1), 5), (ev(2), 30), (ev(3), 65)]
    with beam.Pipeline(runner=in_process_runner()) as p:
        _ = (
            p
            | beam.Create(stamped)
            | beam.MapTuple(TimestampedValue)
            | WriteToFile(FileTargetConfig(path=str(tmp_path), window=60.0), "t")
        )
    files = sorted(f.name for f in tmp_path.glob("*.jsonl"))
    assert [f[:20] for f in files] == ["part-19700101T000000", "part-19700101T000100"]
    ids = [sorted(r["id"] for r in read_rows("jsonl", (tmp_path / f).read_bytes())) for f in files]
    assert ids == [["1", "2"], ["3"]]


def test_commit_window_names_files_by_shard(tmp_path: Path):
    _write([ev(i) for i in range(30)], FileTargetConfig(path=str(tmp_path), commit="window", shards=2))
    files = sorted(f.name for f in tmp_path.glob("*.jsonl"))
    assert files == ["part-00000-of-00002.jsonl", "part-00001-of-00002.jsonl"]
    rows = [r for f in tmp_path.glob("*.jsonl") for r in read_rows("jsonl", f.read_bytes())]
    assert sorted(int(r["id"]) for r in rows) == list(range(30))


def test_an_unwritable_directory_dead_letters_the_events(tmp_path: Path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the target wants a folder")

    def check(dead):
        assert sorted(e.id for e in dead) == ["1", "2"]
        assert {e.get("meshlineerrorstage") for e in dead} == {"deliver"}
        assert all("cannot write" in e.get("meshlineerror") for e in dead)

    with beam.Pipeline(runner=in_process_runner()) as p:
        out = (
            p
            | beam.Create([ev(1), ev(2)])
            | WriteToFile(FileTargetConfig(path=str(blocker / "out")), "t", policy=_NO_RETRY)
        )
        assert_that(out, check)


def test_objects_are_written_as_events_arrive_and_renamed_into_place(tmp_path: Path):
    from meshline.connectors.file import _FileStore

    sink = _FileStore(str(tmp_path)).sink("a/b")
    sink.fh.write(b'{"x":1}\n')
    sink.fh.flush()
    temps = list(tmp_path.rglob(".part-*.tmp"))
    assert [t.parent for t in temps] == [tmp_path / "a" / "b"]  # the bytes are on disk, not in memory
    assert temps[0].read_bytes() == b'{"x":1}\n'
    sink.commit("a/b/part-1.jsonl", "application/x-ndjson")
    assert (tmp_path / "a" / "b" / "part-1.jsonl").read_bytes() == b'{"x":1}\n'
    assert not list(tmp_path.rglob(".part-*.tmp"))


def test_an_object_that_cannot_be_renamed_dead_letters_its_events_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from meshline.connectors import file as file_mod

    def refuse(sources, destinations):
        raise OSError("rename refused (test)")

    monkeypatch.setattr(file_mod.FileSystems, "rename", refuse)
    events = [ev(i) for i in range(3)]

    def check(dead):
        assert sorted(e.id for e in dead) == ["0", "1", "2"]
        assert all("rename refused (test)" in e.get("meshlineerror", "") for e in dead)
        assert [e.data for e in sorted(dead, key=lambda e: e.id)] == [{"i": 0}, {"i": 1}, {"i": 2}]

    with beam.Pipeline(runner=in_process_runner()) as p:
        out = (
            p | beam.Create(events) | WriteToFile(FileTargetConfig(path=str(tmp_path)), "t", policy=_NO_RETRY)
        )
        assert_that(out, check)
    assert not list(tmp_path.rglob(".part-*.tmp"))
    assert not list(tmp_path.glob("*.jsonl"))


def test_objects_of_a_failed_bundle_are_discarded(tmp_path: Path):
    from meshline.connectors.file import _MakeFileStore
    from meshline.connectors.objects_bundle import WriteObjectsFn

    fn = WriteObjectsFn(_MakeFileStore(str(tmp_path)), "", "jsonl", None, None, "t", _NO_RETRY)
    fn.setup()
    fn.start_bundle()
    fn._add([ev(1)], GlobalWindow(), None)
    assert len(list(tmp_path.rglob(".part-*.tmp"))) == 1
    fn.start_bundle()  # the runner retries after the bundle failed before finish_bundle
    assert not list(tmp_path.rglob(".part-*.tmp"))
    fn._add([ev(2)], GlobalWindow(), None)
    fn.teardown()
    assert not list(tmp_path.rglob(".part-*.tmp"))
    assert not list(tmp_path.glob("*.jsonl"))


WINDOWED = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: windowed}}
spec:
  sources: [{{name: in, type: file, config: {{path: "{src}"}}}}]
  targets: [{{name: out, type: file, config: {{path: "{out}/{{yyyy}}", format: jsonl, window: 60s}}}}]
  triggers: [{{name: all, target: out}}]
"""


def test_a_bounded_run_with_a_window_names_files_by_the_time_they_are_written(tmp_path: Path):
    """A file source's events carry Beam's minimum timestamp: the window is the time of writing."""
    import datetime
    import json
    import time

    from meshline.compiler import build_pipeline
    from meshline.compiler.summary import collect_counters
    from meshline.spec import load_text

    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(
            json.dumps({"specversion": "1.0", "id": str(i), "source": "s", "type": "t"}) + "\n"
            for i in range(20)
        )
    )
    (integration,) = load_text(WINDOWED.format(src=src, out=tmp_path / "out"), "windowed.yaml").integrations
    p = beam.Pipeline(runner=in_process_runner())
    build_pipeline(integration, p)
    before = int(time.time()) // 60 * 60
    result = p.run()
    result.wait_until_finish()
    after = int(time.time()) // 60 * 60
    assert collect_counters(result)["target.out.delivered"] == 20
    files = sorted((tmp_path / "out").rglob("*.jsonl"))
    assert sum(len(read_rows("jsonl", f.read_bytes())) for f in files) == 20
    for f in files:
        tag = re.fullmatch(r"part-(\d{8}T\d{6})-[0-9a-f]{20}\.jsonl", f.name)
        assert tag, f.name
        start = datetime.datetime.strptime(tag.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=datetime.UTC)
        assert before <= start.timestamp() <= after, f.name
        assert f.parent.name == f"{start.year:04d}"  # {yyyy} from the window (the events have no time)


def test_an_interrupted_run_removes_the_objects_it_was_filling(tmp_path: Path):
    """The CLI's signal path ends the process at once: what is half written is removed first."""
    from meshline import cleanup
    from meshline.connectors.file import _FileStore

    store = _FileStore(str(tmp_path))
    done = store.sink("a")
    done.fh.write(b"{}\n")
    done.commit("a/part-1.jsonl", "application/x-ndjson")
    filling = store.sink("b")
    filling.fh.write(b"{}\n")
    assert len(list(tmp_path.rglob(".part-*.tmp"))) == 1
    try:
        assert cleanup.interrupted() == 1  # the one still filling; the committed one withdrew
        assert not list(tmp_path.rglob(".part-*.tmp"))
        assert (tmp_path / "a" / "part-1.jsonl").read_bytes() == b"{}\n"
        with pytest.raises(cleanup.Interrupted):
            store.sink("c")  # a bundle still running cannot start another object
        assert not list(tmp_path.rglob(".part-*.tmp"))
    finally:
        cleanup.reset()
