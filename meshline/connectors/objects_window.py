"""``commit: window``: a window's events grouped by (directory, shard), one object per group.

Written when the window closes, under ``part-[WINDOW-]SSSSS-of-NNNNN[-CCC].EXT``: a replay
after a restore rewrites the same names (see :mod:`meshline.connectors.objects`).
"""

from __future__ import annotations

import hashlib

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow

from meshline.connectors.objects_bundle import DEAD, Part, WriteObjectsFn
from meshline.connectors.objects_naming import sharded_name, window_tag
from meshline.connectors.objects_store import open_sink
from meshline.connectors.paths import PathTemplate
from meshline.events import CloudEvent, EventBatch, dead_letter, each_event

__all__ = ["KeyFn", "WriteGroupFn"]


class KeyFn(beam.DoFn):
    """(directory, shard) → event; the directory takes the window's start for time placeholders."""

    def __init__(self, prefix: str, shards: int):
        self._prefix = prefix
        self._shards = shards

    def setup(self):
        self._render = PathTemplate(self._prefix).renderer()

    def process(self, element: CloudEvent | EventBatch, window=beam.DoFn.WindowParam):
        when = None if isinstance(window, GlobalWindow) else window.start.to_utc_datetime()
        for event in each_event(element):
            attrs = event.attributes
            h = hashlib.blake2b(f"{attrs.get('source')}\0{attrs.get('id')}".encode(), digest_size=8).digest()
            yield (self._render(event, when), int.from_bytes(h, "big") % self._shards), event


class WriteGroupFn(WriteObjectsFn):
    """Writes one window's events of one (directory, shard), in a deterministic order."""

    def __init__(
        self, make_store, prefix, fmt, max_events, max_bytes, target, policy, shards, dead_letter, reject=None
    ):
        super().__init__(make_store, prefix, fmt, max_events, max_bytes, target, policy, dead_letter, reject)
        self._shards = shards

    def start_bundle(self):
        self._discard_parts()
        self._dead = []

    def process(self, element, window=beam.DoFn.WindowParam):  # type: ignore[override]
        (directory, shard), events = element
        events = sorted(events, key=lambda e: (str(e.attributes.get("source")), str(e.attributes.get("id"))))
        tag = window_tag(window)
        chunk = 0
        part: Part | None = None
        for event in events:
            why = self._reject(event) if self._reject is not None else None
            if why:
                yield beam.pvalue.TaggedOutput(DEAD, dead_letter(event, why, "deliver"))
                continue
            if part is None:
                part = Part(directory, window, self._fmt, open_sink(self._store, directory))
            writer = part.writer
            assert writer is not None
            bad = self._encode(writer, event)
            if bad is not None:
                yield bad
                continue
            part.keys.append((event.attributes.get("source"), event.attributes.get("id")))
            if (self._max_events is not None and len(part.keys) >= self._max_events) or (
                self._max_bytes is not None and writer.size() >= self._max_bytes
            ):
                yield from self._flush_named(
                    part, sharded_name(directory, tag, shard, self._shards, chunk, self._fmt)
                )
                chunk += 1
                part = None
        if part is not None and part.keys:
            yield from self._flush_named(
                part, sharded_name(directory, tag, shard, self._shards, chunk, self._fmt)
            )
        elif part is not None:
            part.sink.discard()  # every event of it failed to encode

    def finish_bundle(self):
        return None
