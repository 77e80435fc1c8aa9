"""``file`` source and target: local paths and any Beam filesystem URL.

Source: a file, glob or URL (``gs://``, ``s3://`` … when Beam has that
filesystem). ``format: cloudevents`` reads one structured CloudEvent per line;
``format: lines`` wraps each line in a ``dev.meshline.file.line`` event with id
``PATH:LINE``. A line that is not a valid CloudEvent is dead-lettered with stage
``decode`` as a ``dev.meshline.file.line`` event holding the raw line. Blank
lines are skipped. Files are matched at run time (not when the pipeline is
built) and spread over workers in byte ranges (:func:`_ranges`): a large
uncompressed file is read by several workers at once, each range from the first
line that starts in it to the last, so every line is read once and keeps its line
number. Events leave the source in :class:`~meshline.events.EventBatch` elements of
up to ``BATCH`` lines, and local files are read and written through a 1 MiB buffer.

Target: the object-store core (:mod:`meshline.connectors.objects`) over Beam's
filesystems: each file is written under a hidden temporary name in its folder
(``.part-UUID.tmp``, filled as events arrive) and renamed into place, so readers
never see half-written files, and it is in place before the bundle that produced
it commits (so an acknowledging source acknowledges only what is on disk). A
bundle that fails removes its temporary files, and so does an interrupted run
(Ctrl-C, SIGTERM: :mod:`meshline.cleanup`); a process that is killed (SIGKILL)
leaves them (hidden, never renamed: they hold nothing that was acknowledged).
"""

from __future__ import annotations

import io
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from itertools import islice
from typing import Any
from urllib.parse import quote

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline import cleanup
from meshline.connectors.delivery import RetryPolicy, TransientError
from meshline.connectors.file_config import LINE_TYPE, SOURCE, TARGET, FileSourceConfig, FileTargetConfig
from meshline.connectors.objects import WriteObjects, target_args
from meshline.errors import ConfigError, EventError
from meshline.events import CloudEvent, EventBatch, dead_letter, from_json
from meshline.registry import BuildContext

__all__ = ["SOURCE", "TARGET", "FileSourceConfig", "FileTargetConfig", "ReadFromFile", "WriteToFile"]

_LOGGER = logging.getLogger(__name__)
DEAD = "dead"
BATCH = 32  # events per EventBatch element (see meshline.events.EventBatch)


# --------------------------------------------------------------------------- source


def _file_url(path: str) -> str:
    """The ``source`` of a file's events: a URI-reference, so a local path is percent-encoded."""
    if "://" in path:
        return path
    return "file://" + quote(os.path.abspath(path))


class _ReadFileFn(beam.DoFn):
    """Reads one range of a matched file (:func:`_ranges`); emits events and tagged decode dead letters.

    A range ``(path, start, end, lines_before)`` holds the lines that start at a byte in
    ``[start, end)`` (``end`` None: to the end of the file); ``lines_before`` is the number
    of lines before its first one, or -1 when it is not known yet: then it is counted only
    if a line of the range is dead-lettered (its id and reason name the line).
    """

    def __init__(self, fmt: str, line_type: str, source_name: str):
        self._fmt = fmt
        self._type = line_type
        self._source_name = source_name

    def process(self, element: str | tuple[str, int, int | None, int]):
        path, start, end, lines_before = (element, 0, None, 0) if isinstance(element, str) else element
        url = _file_url(path)
        raw_type = self._type
        batch: list[CloudEvent] = []
        with _big_buffer(FileSystems.open(path)) as fh:
            # Compressed files (.gz, .bz2, …) are not iterable; read them line by line.
            lines = fh if hasattr(fh, "__iter__") else iter(fh.readline, b"")
            if start or end is not None:
                lines = _lines_of_range(fh, lines, start, end)
            if self._fmt == "lines":
                if lines_before < 0:
                    lines_before = _lines_before(path, start)
                for n, raw in enumerate(lines, lines_before + 1):
                    line = raw.rstrip(b"\r\n")
                    if not line.strip():
                        continue
                    batch.append(
                        CloudEvent(
                            {"specversion": "1.0", "id": f"{path}:{n}", "source": url, "type": raw_type},
                            _text(line),
                        )
                    )
                    if len(batch) >= BATCH:
                        yield EventBatch(batch)
                        batch = []
            else:
                n = 0  # lines of the range before this chunk
                while chunk := list(islice(lines, BATCH)):
                    try:  # the common case: every line of the chunk is an event
                        batch = [from_json(raw) for raw in chunk]
                    except EventError:
                        batch = []
                        if lines_before < 0:
                            lines_before = _lines_before(path, start)
                        for i, raw in enumerate(chunk, lines_before + n + 1):
                            try:
                                batch.append(from_json(raw))
                            except EventError as e:
                                if not raw.isspace():
                                    yield self._undecodable(path, url, i, raw, e)
                    n += len(chunk)
                    if batch:
                        yield EventBatch(batch) if len(batch) > 1 else batch[0]
                        batch = []
        if len(batch) > 1:
            yield EventBatch(batch)
        elif batch:
            yield batch[0]

    def _undecodable(self, path: str, url: str, n: int, raw: bytes, e: EventError) -> Any:
        line = raw.rstrip(b"\r\n")
        bad = CloudEvent(
            {"specversion": "1.0", "id": f"{path}:{n}", "source": url, "type": LINE_TYPE},
            _text(line),
        )
        return beam.pvalue.TaggedOutput(
            DEAD, dead_letter(bad, f"line {n}: {e}", "decode", step=self._source_name)
        )


# --------------------------------------------------------------------------- byte ranges

#: A file is split into ranges of ``size / SPLIT_PARTS`` bytes, at least ``SPLIT_MIN`` and at most
#: ``SPLIT_MAX`` (a file of at most ``SPLIT_MIN`` is one range). Beam's direct runner hands each of
#: its workers an equal share of a stage's elements, so many ranges of equal size keep the
#: workers' shares within a range of each other; each range costs one ``open`` and ``seek``.
SPLIT_PARTS = 32
SPLIT_MIN = 8 << 20
SPLIT_MAX = 64 << 20


def _range_size(size: int) -> int:
    return min(SPLIT_MAX, max(SPLIT_MIN, -(-size // SPLIT_PARTS)))


def _ranges(path: str, size: int, fmt: str) -> list[tuple[str, int, int | None, int]]:
    """The ranges of one matched file: ``(path, start, end, lines_before)`` (see :class:`_ReadFileFn`).

    Compressed files cannot be entered in the middle: one range. With ``format: lines`` every
    event's id holds its line number, so the lines before each range are counted here, in one
    pass over the file (about 2 GB/s from the page cache), for local files; a remote file in
    that format is one range rather than read twice. In the CloudEvents format a range's line
    numbers are needed only for a dead letter's id, and counted then (``lines_before`` -1).
    """
    step = _range_size(size)
    whole: list[tuple[str, int, int | None, int]] = [(path, 0, None, 0)]
    if size <= step or CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED:
        return whole
    starts = list(range(0, size, step))
    if fmt == "lines":
        if "://" in path:
            return whole
        before = [0, *_newlines_before(path, [s - 1 for s in starts[1:]])]
        known = [0] + [b + 1 for b in before[1:]]
    else:
        known = [0] + [-1] * (len(starts) - 1)
    ends: list[int | None] = [*starts[1:], None]
    return [(path, s, e, k) for s, e, k in zip(starts, ends, known, strict=True)]


def _newlines_before(path: str, offsets: list[int]) -> list[int]:
    """For each of the ascending ``offsets``, how many newlines ``path`` holds before it."""
    found: list[int] = []
    pos = count = 0
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        for offset in offsets:
            while pos < offset:
                chunk = fh.read(min(_BUFFER, offset - pos))
                if not chunk:
                    break
                count += chunk.count(b"\n")
                pos += len(chunk)
            found.append(count)
    return found


def _lines_before(path: str, start: int) -> int:
    """The number of lines before the first line that starts at or after ``start``."""
    return 0 if start == 0 else _newlines_before(path, [start - 1])[0] + 1


def _lines_of_range(fh: Any, lines: Iterator[bytes], start: int, end: int | None) -> Iterator[bytes]:
    """The lines of ``fh`` that start at a byte in ``[start, end)``, as Beam's text source reads them.

    A range that does not start the file skips the line holding byte ``start - 1`` (the
    previous range reads it, however far it goes): after it, the next line starts at or
    after ``start``.
    """
    pos = 0
    if start:
        if fh.seekable():
            fh.seek(start - 1)
            pos = start - 1
        while pos < start:  # one line when seekable; from the file's start when not
            skipped = next(lines, b"")
            if not skipped:
                return
            pos += len(skipped)
    if end is None:
        yield from lines
        return
    if pos >= end:
        return
    for raw in lines:
        yield raw
        pos += len(raw)
        if pos >= end:
            return


_BUFFER = 1 << 20


def _big_buffer(fh: Any) -> Any:
    """A local file read or written through a 1 MiB buffer instead of the default 8 KiB.

    Each refill is a system call, about 1 µs on these machines: with 8 KiB that was a third
    of the cost of reading a 1 KiB line. Other file objects (compressed, remote) are kept.
    """
    if type(fh) is io.BufferedReader and type(fh.raw) is io.FileIO:
        return io.BufferedReader(fh.detach(), buffer_size=_BUFFER)
    if type(fh) is io.BufferedWriter and type(fh.raw) is io.FileIO:
        return io.BufferedWriter(fh.detach(), buffer_size=_BUFFER)
    return fh


def _text(line: bytes) -> str | bytes:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line


def _no_match(path: str) -> str:
    return f"no file matches {path!r} (set allow_empty: true if there may be none)"


def _matches(pattern: str) -> list[str]:
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


#: How long ``meshline run`` looks for a file source's matches before the run starts. A remote
#: filesystem this machine cannot reach (no network, no credentials) retries for minutes: the
#: Google Cloud Storage client ~2 minutes before it gives up.
PREFLIGHT_TIMEOUT_S = 10.0


def preflight(config: FileSourceConfig, timeout: float = PREFLIGHT_TIMEOUT_S) -> list[tuple[str, str]]:
    """``meshline run``: a path that matches nothing is an error before the run starts.

    When the filesystem cannot answer here (it fails, or says nothing within ``timeout``), the
    check is left to the workers, which refuse an empty match in the same words.
    """
    if config.allow_empty:
        return []
    found: list[bool] = []

    def look() -> None:
        try:
            found.append(bool(_matches(config.path)))
        except Exception as e:  # cannot look from here (a filesystem without credentials)
            _LOGGER.debug("file source: cannot match %s before the run: %s", config.path, e)

    looking = threading.Thread(target=look, name="meshline-preflight", daemon=True)
    looking.start()
    looking.join(timeout)
    if looking.is_alive():
        _LOGGER.info("file source: no answer for %s within %.0fs; workers will look", config.path, timeout)
        return []
    if not found or found[0]:
        return []
    return [("path", _no_match(config.path))]


def _matched(pattern: str) -> list[tuple[str, int]]:
    """The files matching ``pattern``, sorted, with their sizes (0 when the filesystem does not say)."""
    return sorted((m.path, int(m.size_in_bytes or 0)) for m in FileSystems.match([pattern])[0].metadata_list)


class _MatchFn(beam.DoFn):
    """Pattern → the byte ranges of every matching file (:func:`_ranges`)."""

    def __init__(self, allow_empty: bool = False, source_name: str = "file", fmt: str = "cloudevents"):
        self._allow_empty = allow_empty
        self._name = source_name
        self._fmt = fmt

    def process(self, pattern: str):
        found = _matched(pattern)
        if not found:
            if not self._allow_empty:
                raise ConfigError(f"source {self._name}: path: {_no_match(pattern)}")
            _LOGGER.info("file source %s: no file matches %s", self._name, pattern)
        for path, size in found:
            yield from _ranges(path, size, self._fmt)


class ReadFromFile(beam.PTransform):
    """``PBegin`` → ``(events, dead_letters)``."""

    def __init__(self, config: FileSourceConfig, source_name: str = "file"):
        super().__init__()
        self._config = config
        self._name = source_name

    def expand(self, pbegin):
        outputs = (
            pbegin
            | "Pattern" >> beam.Create([self._config.path])
            | "Match" >> beam.ParDo(_MatchFn(self._config.allow_empty, self._name, self._config.format))
            | "SpreadFiles" >> beam.Reshuffle()
            | "Read"
            >> beam.ParDo(_ReadFileFn(self._config.format, self._config.type, self._name))
            .with_outputs(DEAD, main="events")
            .with_output_types(CloudEvent)
        )
        return outputs.events, outputs[DEAD]


# --------------------------------------------------------------------------- target


def _split_template(path: str) -> tuple[str, str]:
    """``out/{type}/x`` → base ``out``, template ``{type}/x`` (the base has no placeholder)."""
    parts = path.replace("\\", "/").split("/")
    for i, part in enumerate(parts):
        if "{" in part:
            return "/".join(parts[:i]) or ".", "/".join(parts[i:])
    return path.rstrip("/") or ".", ""


class _FileStore:
    """Files under ``base``: written under a hidden temporary name, then renamed into place."""

    def __init__(self, base: str):
        self._base = base

    def put(self, key: str, data: bytes, content_type: str) -> None:
        sink = self.sink(key.rsplit("/", 1)[0] if "/" in key else "")
        try:
            sink.fh.write(data)
            sink.commit(key, content_type)
        except BaseException:
            sink.discard()
            raise

    def sink(self, directory: str) -> _FileSink:
        """An object written straight into a hidden temporary file in its final folder."""
        return _FileSink(self._base, directory)

    def list_keys(self, prefix: str) -> list[str]:
        root = FileSystems.join(self._base, prefix)
        if not FileSystems.exists(root):
            return []
        base = self._base.rstrip("/") + "/"
        found = FileSystems.match([FileSystems.join(root, "**")])[0].metadata_list
        return [m.path[len(base) :] if m.path.startswith(base) else m.path for m in found]

    def get(self, key: str) -> bytes | None:
        path = FileSystems.join(self._base, key)
        if not FileSystems.exists(path):
            return None
        with FileSystems.open(path, compression_type="uncompressed") as fh:
            return fh.read()

    def exists(self, key: str) -> bool:
        return FileSystems.exists(FileSystems.join(self._base, key))

    def delete(self, keys: list[str]) -> None:
        paths = [FileSystems.join(self._base, k) for k in keys]
        FileSystems.delete([p for p in paths if FileSystems.exists(p)])

    def close(self) -> None:
        return None


class _FileSink:
    """One object being written to ``.part-UUID.tmp`` in its folder, renamed into place by ``commit``.

    While it is open its temporary file is registered with :mod:`meshline.cleanup`, so an
    interrupted run removes it instead of leaving it behind.
    """

    def __init__(self, base: str, directory: str):
        self._base = base
        folder = FileSystems.join(base, directory) if directory else base
        self._temp = FileSystems.join(folder, f".part-{uuid.uuid4().hex}.tmp")
        try:
            if not FileSystems.exists(folder):
                FileSystems.mkdirs(folder)
        except OSError:
            pass  # another worker made it first; create() below says if it is really missing
        self._token = cleanup.register(self._remove)  # Interrupted: the run is stopping
        try:
            self.fh = _big_buffer(FileSystems.create(self._temp))
        except Exception as e:
            cleanup.unregister(self._token)
            raise TransientError(f"cannot write {self._temp}: {e}") from e
        self._closed = False
        if cleanup.is_interrupted():  # the run stopped while the file was being created
            self._remove()
            raise cleanup.Interrupted("the run is being interrupted")

    def _remove(self) -> None:
        try:
            FileSystems.delete([self._temp])
        except Exception:  # already renamed into place, or removed
            pass

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self.fh.close()

    def commit(self, key: str, content_type: str) -> None:
        final = FileSystems.join(self._base, key)
        try:
            self._close()
            if FileSystems.exists(final):
                FileSystems.delete([final])  # a replay overwrites instead of duplicating
            FileSystems.rename([self._temp], [final])
        except Exception as e:
            raise TransientError(f"cannot write {final}: {e}") from e
        cleanup.unregister(self._token)

    def read(self) -> bytes:
        self._close()
        with FileSystems.open(self._temp, compression_type="uncompressed") as fh:
            return fh.read()

    def discard(self) -> None:
        try:
            self._close()
        finally:
            cleanup.unregister(self._token)
            if FileSystems.exists(self._temp):
                FileSystems.delete([self._temp])


class _MakeFileStore:
    def __init__(self, base: str):
        self._base = base

    def __call__(self) -> _FileStore:
        return _FileStore(self._base)


class WriteToFile(beam.PTransform):
    """``PCollection[CloudEvent]`` → dead letters, via :class:`~meshline.connectors.objects.WriteObjects`.

    Names: ``DIR/part-[WINDOW-]DIGEST.EXT`` per bundle (the digest is of the events
    inside, so a replay of the same events overwrites), or
    ``DIR/part-[WINDOW-]SSSSS-of-NNNNN.EXT`` with ``commit: window``.
    """

    def __init__(
        self,
        config: FileTargetConfig,
        target_name: str = "file",
        *,
        runner: str = "direct",
        policy: RetryPolicy | None = None,
        dead_letter: bool = True,
        redelivering: bool = False,
        integration: str = "",
    ):
        super().__init__()
        self._config = config
        self._target: dict[str, Any] = {
            "target_name": target_name,
            "runner": runner,
            "policy": policy,
            "dead_letter": dead_letter,
            "redelivering": redelivering,
            "integration": integration,
        }

    def expand(self, events):
        base, template = _split_template(self._config.path)
        write = WriteObjects.of(_MakeFileStore(base), self._config, prefix=template, **self._target)
        return events | "Objects" >> write


def build_source(config: FileSourceConfig, ctx: BuildContext) -> ReadFromFile:
    """The source's transform (:data:`SOURCE` names it)."""
    return ReadFromFile(config, ctx.name)


def build_target(config: FileTargetConfig, ctx: BuildContext) -> WriteToFile:
    """The target's transform (:data:`TARGET` names it)."""
    return WriteToFile(config, **target_args(ctx))
