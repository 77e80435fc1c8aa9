"""``commit: bundle``: one object per (directory, window) per bundle, written in ``finish_bundle``.

The object is stored before the bundle commits, so a source fused with the target
acknowledges a message only after the object holding it is stored (see
:mod:`meshline.connectors.objects`). :class:`WriteObjectsFn` is also the base of the
``commit: window`` writer (:mod:`meshline.connectors.objects_window`): encoding, retries,
dead letters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.connectors.delivery import RetryPolicy, TransientError, reason
from meshline.connectors.formats import RecordWriter, events_from_object, open_writer
from meshline.connectors.ledger import Ledger, event_digest, supports_ledger
from meshline.connectors.objects_naming import CONTENT_TYPES, keys_digest, object_name, window_tag
from meshline.connectors.objects_store import ObjectSink, ObjectStore, open_sink
from meshline.connectors.paths import PathTemplate
from meshline.errors import DeliveryError
from meshline.events import CloudEvent, EventBatch, dead_letter, each_event

__all__ = ["DEAD", "Part", "WindowedWriteObjectsFn", "WriteObjectsFn", "in_window"]

_LOGGER = logging.getLogger(__name__)
DEAD = "dead"  # the tag of the dead-letter output
_GLOBAL = GlobalWindow()


@dataclass
class Part:
    """One object being filled: its encoder and the (source, id) of its events.

    Events are not kept (thousands of live event dicts make Python's garbage collector
    slow everything down); if the object cannot be written they are decoded back from
    its bytes for the dead-letter target.
    """

    directory: str
    window: Any
    fmt: str
    sink: ObjectSink
    keys: list[tuple[Any, Any]] = field(default_factory=list)
    writer: RecordWriter | None = None

    def __post_init__(self) -> None:
        self.writer = open_writer(self.fmt, self.sink.fh)


class WriteObjectsFn(beam.DoFn):
    salt = ""  # the full label of the WriteObjects it belongs to (see keys_digest)
    ledger_spec: tuple[str, float] | None = None  # (root, window) of its ledger (see WriteObjects)

    def __init__(
        self,
        make_store: Callable[[], ObjectStore],
        prefix: str,
        fmt: str,
        max_events: int | None,
        max_bytes: int | None,
        target: str,
        policy: RetryPolicy,
        dead_letter: bool = True,
        reject: Callable[[CloudEvent], str | None] | None = None,
    ):
        self._dead_letter = dead_letter
        self._reject = reject
        self._make_store = make_store
        self._prefix = prefix
        self._fmt = fmt
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._target = target
        self._policy = policy

    def setup(self):
        self._store = self._make_store()
        self._render = PathTemplate(self._prefix).renderer()
        counter = beam.metrics.Metrics.counter
        self._delivered = counter("meshline", f"target.{self._target}.delivered")
        self._objects = counter("meshline", f"target.{self._target}.objects")
        self._retried = counter("meshline", f"target.{self._target}.retried")
        self._already = counter("meshline", f"target.{self._target}.already_stored")
        self._content_type = CONTENT_TYPES[self._fmt]
        self._ledger: Ledger | None = None
        self._stored: set[int] = set()
        if self.ledger_spec is not None:
            self._open_ledger(*self.ledger_spec)

    def _open_ledger(self, root: str, window: float) -> None:
        if not supports_ledger(self._store):
            return
        ledger = Ledger(self._store, root, window)  # type: ignore[arg-type]
        try:
            self._stored = ledger.load()
        except Exception as e:
            _LOGGER.warning(
                "target %s: cannot read its ledger (%s); events redelivered after a crash may be "
                "written twice",
                self._target,
                reason(e),
            )
            return
        self._ledger = ledger

    def teardown(self):
        self._discard_parts()
        store = getattr(self, "_store", None)
        if store is not None:
            store.close()

    def _discard_parts(self) -> None:
        """Objects left open by a bundle that failed (its events will be retried): drop them."""
        for part in getattr(self, "_parts", {}).values():
            try:
                part.sink.discard()
            except Exception as e:
                _LOGGER.debug("target %s: cannot discard an unfinished object: %s", self._target, e)
        self._parts: dict[tuple[str, Any], Part] = {}

    def start_bundle(self):
        self._discard_parts()
        self._dead: list[Any] = []

    def process(self, event: CloudEvent | EventBatch):
        # Global window (bounded runs): no WindowParam, so Beam takes its fast invocation path.
        self._add(each_event(event), _GLOBAL, None)
        if self._dead:
            dead, self._dead = self._dead, []
            return dead
        return  # no output: Beam's fast path (a generator costs more per element)

    def _add(self, events: Sequence[CloudEvent], window: Any, when: Any) -> None:
        """Encode each event into the object of its (directory, window); roll over when full."""
        reject, stored, render, parts = self._reject, self._stored, self._render, self._parts
        max_events, max_bytes = self._max_events, self._max_bytes
        for event in events:
            if reject is not None:
                why = reject(event)
                if why:  # the target refuses this one event (e.g. aws.s3 max_event_bytes)
                    self._dead.append(beam.pvalue.TaggedOutput(DEAD, dead_letter(event, why, "deliver")))
                    continue
            attrs = event.attributes
            if stored and event_digest(attrs.get("source"), attrs.get("id")) in stored:
                self._already.inc()  # stored by an earlier run that crashed before acknowledging it
                continue
            key = (render(event, when), window)
            part = parts.get(key)
            if part is None:
                part = parts[key] = Part(key[0], window, self._fmt, open_sink(self._store, key[0]))
            writer = part.writer
            assert writer is not None
            bad = self._encode(writer, event)
            if bad is not None:
                self._dead.append(bad)
                continue
            keys = part.keys
            keys.append((attrs.get("source"), attrs.get("id")))
            n = len(keys)
            # The size is looked at every 64 events: roll-over is approximate, the hot path cheap.
            if (max_events is not None and n >= max_events) or (
                not n & 63 and max_bytes is not None and writer.size() >= max_bytes
            ):
                del parts[key]
                self._dead.extend(self._flush(part))

    def _encode(self, writer: RecordWriter, event: CloudEvent) -> Any:
        """Append ``event`` to an object; its dead letter when the format cannot encode it."""
        try:
            writer.write(event)
        except (TypeError, ValueError, OverflowError) as e:
            bad = dead_letter(event, f"cannot encode event as {self._fmt}: {e}", "deliver")
            return beam.pvalue.TaggedOutput(DEAD, bad)
        return None

    def _flush(self, part: Part) -> list[Any]:
        digest = keys_digest(part.keys, self.salt)
        name = object_name(part.directory, window_tag(part.window), digest, self._fmt)
        return self._flush_named(part, name)

    def _flush_named(self, part: Part, name: str) -> list[Any]:
        """Write one object; the dead letters of its events when that finally fails."""
        assert part.writer is not None
        part.writer.close()
        sink = part.sink
        attempts = [1]

        def retried(e: BaseException) -> None:
            attempts[0] += 1
            self._retried.inc()

        ledger = self._ledger
        digests = [event_digest(s, i) for s, i in part.keys] if ledger is not None else []

        def write() -> None:  # retried whole: the ledger entry first, without its object it is ignored
            if ledger is not None:
                ledger.record(name, digests)
            sink.commit(name, self._content_type)

        try:
            self._policy.call(
                write,
                is_transient=lambda e: isinstance(e, TransientError),
                on_retry=retried,
            )
        except Exception as e:
            tries = f" (after {attempts[0]} attempts)" if attempts[0] > 1 else ""
            why = f"writing object {name} failed{tries}: {reason(e)}"
            if not self._dead_letter:
                raise DeliveryError(f"target {self._target}: {why}") from None
            _LOGGER.warning("target %s: %s (%d events dead-lettered)", self._target, why, len(part.keys))
            try:
                events = events_from_object(self._fmt, sink.read())
            finally:
                sink.discard()
            return [
                beam.pvalue.TaggedOutput(DEAD, in_window(dead_letter(ev, why, "deliver"), part.window))
                for ev in events
            ]
        self._delivered.inc(len(part.keys))
        self._objects.inc()
        return []

    def finish_bundle(self):
        parts, self._parts = self._parts, {}
        for part in parts.values():
            yield from self._flush(part)
        if self._ledger is not None:
            self._ledger.expire()


def in_window(event: CloudEvent, window: Any) -> Any:
    # Outputs of finish_bundle need an explicit window.
    return beam.transforms.window.WindowedValue(event, window.max_timestamp(), (window,))


class WindowedWriteObjectsFn(WriteObjectsFn):
    """The same, with fixed windows: time placeholders and object names take the window's start."""

    def process(self, event: CloudEvent | EventBatch, window=beam.DoFn.WindowParam):
        when = None if isinstance(window, GlobalWindow) else window.start.to_utc_datetime()
        self._add(each_event(event), window, when)
        if self._dead:
            dead, self._dead = self._dead, []
            return dead
        return  # no output: Beam's fast path (a generator costs more per element)
