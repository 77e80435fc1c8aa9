"""``file`` source and target: local paths and any Beam filesystem URL.

Source: a file, glob or URL (``gs://``, ``s3://`` … when Beam has that
filesystem). ``format: cloudevents`` reads one structured CloudEvent per line;
``format: lines`` wraps each line in a ``dev.meshline.file.line`` event with id
``PATH:LINE``. A line that is not a valid CloudEvent is dead-lettered with stage
``decode`` as a ``dev.meshline.file.line`` event holding the raw line. Blank
lines are skipped. Files are matched at run time (not when the pipeline is
built) and spread over workers one file at a time.

Target: one object per (directory, window, bundle), written under a temporary
name and renamed to ``DIR/part-[WINDOW-]NNNNN-of-MMMMM.EXT`` once the bundle is
committed, so readers never see half-written files.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.transforms.window import GlobalWindow

from meshline.config import Duration, doc
from meshline.connectors.formats import extension, open_writer
from meshline.connectors.paths import PathTemplate
from meshline.errors import EventError
from meshline.events import CloudEvent, dead_letter, from_json
from meshline.registry import Component

__all__ = ["SOURCE", "TARGET", "FileSourceConfig", "FileTargetConfig", "ReadFromFile", "WriteToFile"]

_LOGGER = logging.getLogger(__name__)
DEAD = "dead"
DEFAULT_STREAMING_WINDOW = 60.0
LINE_TYPE = "dev.meshline.file.line"


# --------------------------------------------------------------------------- source


@dataclass(frozen=True, kw_only=True)
class FileSourceConfig:
    """Read events from files: local paths, globs, or any Beam filesystem URL."""

    path: str = doc("a file, a glob (data/*.jsonl) or a filesystem URL (gs://bucket/dir/*.jsonl)")
    format: Literal["cloudevents", "lines"] = doc(
        "'cloudevents': one JSON CloudEvent per line; 'lines': each line becomes an event", "cloudevents"
    )
    type: str = doc("event type for 'lines'", LINE_TYPE)

    def __post_init__(self) -> None:
        if not self.path.strip():
            raise ValueError("path: must not be empty")


def _file_url(path: str) -> str:
    if "://" in path:
        return path
    return "file://" + os.path.abspath(path)


class _ReadFileFn(beam.DoFn):
    """Reads one matched file; emits events and tagged decode dead letters."""

    def __init__(self, fmt: str, line_type: str, source_name: str):
        self._fmt = fmt
        self._type = line_type
        self._source_name = source_name

    def process(self, path: str):
        url = _file_url(path)
        raw_type = self._type
        with FileSystems.open(path) as fh:
            # Compressed files (.gz, .bz2, …) are not iterable; read them line by line.
            lines = fh if hasattr(fh, "__iter__") else iter(fh.readline, b"")
            if self._fmt == "lines":
                for n, raw in enumerate(lines, 1):
                    line = raw.rstrip(b"\r\n")
                    if not line.strip():
                        continue
                    yield CloudEvent(
                        {"specversion": "1.0", "id": f"{path}:{n}", "source": url, "type": raw_type},
                        _text(line),
                    )
                return
            for n, raw in enumerate(lines, 1):
                if raw.isspace():
                    continue
                try:
                    yield from_json(raw)
                except EventError as e:
                    line = raw.rstrip(b"\r\n")
                    bad = CloudEvent(
                        {"specversion": "1.0", "id": f"{path}:{n}", "source": url, "type": LINE_TYPE},
                        _text(line),
                    )
                    yield beam.pvalue.TaggedOutput(
                        DEAD, dead_letter(bad, f"line {n}: {e}", "decode", step=self._source_name)
                    )


def _text(line: bytes) -> str | bytes:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line


class _MatchFn(beam.DoFn):
    def process(self, pattern: str):
        results = FileSystems.match([pattern])
        paths = sorted(m.path for m in results[0].metadata_list)
        if not paths:
            _LOGGER.warning("file source: no file matches %s", pattern)
        yield from paths


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
            | "Match" >> beam.ParDo(_MatchFn())
            | "SpreadFiles" >> beam.Reshuffle()
            | "Read"
            >> beam.ParDo(_ReadFileFn(self._config.format, self._config.type, self._name))
            .with_outputs(DEAD, main="events")
            .with_output_types(CloudEvent)
        )
        return outputs.events, outputs[DEAD]


SOURCE = Component(
    id="file",
    kind="source",
    config=FileSourceConfig,
    build=lambda config, ctx: ReadFromFile(config, ctx.name),
    description="Events from files: JSON CloudEvents one per line, or raw lines.",
)


# --------------------------------------------------------------------------- target


@dataclass(frozen=True, kw_only=True)
class FileTargetConfig:
    """Write events to files under a directory (local or any Beam filesystem URL)."""

    path: str = doc("directory or URL prefix; may use {yyyy}/{mm}/{dd}/{HH} and {type}")
    format: Literal["jsonl", "avro", "parquet"] = doc("file format", "jsonl")
    window: Duration | None = doc(
        "roll-over: one file per window and bundle, e.g. 60s (streaming default: 60s)", None
    )

    def __post_init__(self) -> None:
        if not self.path.strip():
            raise ValueError("path: must not be empty")


def _split_template(path: str) -> tuple[str, str]:
    """``out/{type}/x`` → base ``out``, template ``{type}/x`` (the base has no placeholder)."""
    parts = path.replace("\\", "/").split("/")
    for i, part in enumerate(parts):
        if "{" in part:
            return "/".join(parts[:i]) or ".", "/".join(parts[i:])
    return path.rstrip("/") or ".", ""


class _WriteTempFilesFn(beam.DoFn):
    """Writes a bundle's events into one temporary file per (directory, window)."""

    def __init__(self, base: str, fmt: str, template: str, temp_dir: str, target: str):
        self._base = base
        self._fmt = fmt
        self._template = template
        self._temp_dir = temp_dir
        self._target = target

    def setup(self):
        self._render = PathTemplate(self._template).renderer()
        if not FileSystems.exists(self._temp_dir):
            FileSystems.mkdirs(self._temp_dir)

    def start_bundle(self):
        self._open: dict[tuple[str, Any], tuple[Any, Any, str, list[int]]] = {}

    def process(self, event: CloudEvent):
        # Global window (bounded runs): no WindowParam, so Beam takes its fast invocation path.
        return self._write(event, _GLOBAL, None)

    def _write(self, event: CloudEvent, window: Any, when: Any) -> list[Any] | None:
        key = (self._render(event, when), window)
        entry = self._open.get(key)
        if entry is None:
            temp = FileSystems.join(self._temp_dir, uuid.uuid4().hex + extension(self._fmt))
            fh = FileSystems.create(temp)
            entry = self._open[key] = (fh, open_writer(self._fmt, fh), temp, [0])
        try:
            entry[1].write(event)
        except (TypeError, ValueError, OverflowError) as e:
            reason = f"cannot encode event as {self._fmt}: {e}"
            return [beam.pvalue.TaggedOutput(DEAD, dead_letter(event, reason, "deliver"))]
        entry[3][0] += 1
        return None

    def finish_bundle(self):
        for (directory, window), (fh, writer, temp, count) in self._open.items():
            writer.close()
            fh.close()
            yield beam.transforms.window.WindowedValue(
                (directory, (temp, count[0])), window.max_timestamp(), [window]
            )
        self._open = {}


class _WindowedWriteTempFilesFn(_WriteTempFilesFn):
    """The same, one file per window: time placeholders take the window's start."""

    def process(self, event: CloudEvent, window=beam.DoFn.WindowParam):
        when = None if isinstance(window, GlobalWindow) else window.start.to_utc_datetime()
        return self._write(event, window, when)


_GLOBAL = GlobalWindow()


class _FinalizeFn(beam.DoFn):
    """Renames a directory's temporary files to their final names."""

    def __init__(self, base: str, fmt: str, target: str, temp_dir: str):
        self._base = base
        self._fmt = fmt
        self._temp_dir = temp_dir
        self._delivered = beam.metrics.Metrics.counter("meshline", f"target.{target}.delivered")

    def process(self, element, window=beam.DoFn.WindowParam):
        directory, temps = element
        temps = sorted(temps)
        total = len(temps)
        stem = "part"
        if not isinstance(window, GlobalWindow):
            stem += "-" + window.start.to_utc_datetime().strftime("%Y%m%dT%H%M%S")
        folder = FileSystems.join(self._base, directory) if directory else self._base
        if not FileSystems.exists(folder):
            FileSystems.mkdirs(folder)
        finals = [
            FileSystems.join(folder, f"{stem}-{i:05d}-of-{total:05d}{extension(self._fmt)}")
            for i in range(total)
        ]
        sources = [t for t, _ in temps]
        existing = [f for f in finals if FileSystems.exists(f)]
        if existing:
            FileSystems.delete(existing)  # a replay overwrites instead of duplicating
        FileSystems.rename(sources, finals)
        self._delivered.inc(sum(n for _, n in temps))
        _remove_empty_local_dirs(self._temp_dir)
        yield from finals


def _remove_empty_local_dirs(temp_dir: str) -> None:
    """Best effort: drop the temporary folder (and its parent) once empty; local paths only."""
    if "://" in temp_dir:
        return
    for folder in (temp_dir, os.path.dirname(temp_dir)):
        try:
            os.rmdir(folder)
        except OSError:
            return


class WriteToFile(beam.PTransform):
    """``PCollection[CloudEvent]`` → dead letters (events that could not be encoded)."""

    def __init__(self, config: FileTargetConfig, target_name: str = "file"):
        super().__init__()
        self._config = config
        self._name = target_name

    def expand(self, events):
        base, template = _split_template(self._config.path)
        temp_dir = FileSystems.join(base, ".meshline-tmp", uuid.uuid4().hex)
        window = self._config.window
        if window is None and events.pipeline.options.view_as(StandardOptions).streaming:
            # A global window never closes in a stream: roll files over every minute by default.
            window = DEFAULT_STREAMING_WINDOW
        if window:
            events = events | "Window" >> beam.WindowInto(beam.window.FixedWindows(float(window)))
        writer = _WindowedWriteTempFilesFn if window else _WriteTempFilesFn
        written = events | "WriteTemp" >> beam.ParDo(
            writer(base, self._config.format, template, temp_dir, self._name)
        ).with_outputs(DEAD, main="files")
        files = (
            written.files
            | "GroupByDirectory" >> beam.GroupByKey()
            | "Finalize" >> beam.ParDo(_FinalizeFn(base, self._config.format, self._name, temp_dir))
        )
        self.files = files
        return written[DEAD]


TARGET = Component(
    id="file",
    kind="target",
    config=FileTargetConfig,
    build=lambda config, ctx: WriteToFile(config, ctx.name),
    description="Files under a directory: jsonl, avro or parquet, with path templates and windows.",
)
