"""The core of the object-store targets (``aws.s3``, ``azure.datalake``, ``google.storage``).

A target supplies an :class:`ObjectStore` (``put`` one whole object, ``close``);
:class:`WriteObjects` does the rest, the same way for every store:

- events are encoded (``jsonl`` / ``avro`` / ``parquet``, see
  :mod:`meshline.connectors.formats`) into one object per (directory, window)
  **per bundle**, and the object is written in ``finish_bundle`` — before the
  bundle commits. An acknowledging source (SQS, Pub/Sub, Kafka …) fused with the
  target therefore acknowledges a message only after the object holding it is
  stored, on every runner, including the direct runner and Prism, whose bundle
  commits are not durable across a crash;
- the directory comes from ``prefix`` with ``{yyyy}/{mm}/{dd}/{HH}`` and
  ``{type}`` (:mod:`meshline.connectors.paths`); in streaming (or with
  ``window``) events fall into fixed windows, which set the time placeholders
  (unless the event has a ``time``) and the object name;
- an object rolls over at ``max_events`` or about ``max_bytes`` (approximate
  for parquet, whose rows are buffered: they count at their text size);
- object names are deterministic: ``part-[WINDOW-]DIGEST.EXT`` where DIGEST is
  an order-independent hash of the ``source``/``id`` pairs inside. A replay of
  the same events overwrites the same objects instead of adding copies. After a
  crash, a source may redeliver the in-flight messages grouped differently:
  when the integration has such a source, the writer keeps a ledger of what it
  stored (:mod:`meshline.connectors.ledger`, ``dedupe_window``) and does not
  write those events again;
- ``commit: window`` (chosen by ``auto`` on Flink and Dataflow, whose checkpoints
  hold grouped state durably) groups a window's events by directory and shard
  (a hash of ``source``/``id``) and writes one object per (directory, window,
  shard) when the window closes: ``part-[WINDOW-]SSSSS-of-NNNNN[-CCC].EXT``. A
  replay after a restore rewrites the same names. On the direct runner and Prism
  ``auto`` means ``bundle``: there a source would acknowledge messages before a
  later grouping stage had written them, and a crash would lose them;
- ``put`` is retried on :class:`~meshline.connectors.delivery.TransientError`
  per the triggers' ``delivery`` policy; when it finally fails, every event of
  that object goes to the dead-letter output (stage ``deliver``) with the reason —
  or, when the target has no dead-letter target (``dead_letter=False``), the
  bundle fails, so nothing in it is acknowledged and the source redelivers it.
  An event the format cannot encode is dead-lettered alone.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import apache_beam as beam
import orjson
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.transforms.window import GlobalWindow, TimestampedValue
from apache_beam.utils.timestamp import Timestamp

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.connectors.delivery import RetryPolicy, TransientError, reason
from meshline.connectors.formats import RecordWriter, events_from_object, extension, open_writer
from meshline.connectors.ledger import Ledger, event_digest, ledger_root, supports_ledger
from meshline.connectors.objects_config import (
    DEFAULT_DEDUPE_WINDOW,
    DEFAULT_MAX_BYTES,
    DEFAULT_STREAMING_WINDOW,
    ObjectTargetFields,
)
from meshline.connectors.paths import PathTemplate
from meshline.errors import DeliveryError
from meshline.events import CloudEvent, EventBatch, dead_letter, each_event

if TYPE_CHECKING:
    from meshline.registry import BuildContext

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_STREAMING_WINDOW",
    "ObjectStore",
    "ObjectTargetFields",
    "WriteObjects",
    "ObjectSink",
    "object_name",
    "open_sink",
    "sharded_name",
    "static_prefix",
    "target_args",
]

_LOGGER = logging.getLogger(__name__)
DEAD = "dead"
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "avro": "application/avro",
    "parquet": "application/vnd.apache.parquet",
}


class ObjectStore(Protocol):
    """One bucket/container; created on the worker (``make_store()`` in ``setup``), never pickled."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store one whole object at ``key`` (replacing it); raise TransientError when worth retrying."""
        ...

    def close(self) -> None: ...


class ObjectSink(Protocol):
    """Where one object's bytes go while it is filled (a store may offer ``sink(directory)``).

    Stores without ``sink`` get :class:`_MemorySink` (the object in memory, ``put`` whole).
    A store that can stream (local files) writes as events arrive, so a large object
    never sits in memory: touching tens of MiB of fresh memory per object cost about
    1.5 µs of page faults per event.
    """

    fh: Any  # binary, writable; the format writer writes here

    def commit(self, key: str, content_type: str) -> None:
        """Store the object at ``key`` (``fh`` is complete); raise TransientError when worth retrying."""
        ...

    def read(self) -> bytes:
        """The object's bytes (to dead-letter its events when it cannot be stored)."""
        ...

    def discard(self) -> None:
        """Drop what is left of an object that was not stored."""
        ...


class _MemorySink:
    def __init__(self, store: ObjectStore):
        self.fh = io.BytesIO()
        self._store = store

    def commit(self, key: str, content_type: str) -> None:
        self._store.put(key, self.fh.getvalue(), content_type)

    def read(self) -> bytes:
        return self.fh.getvalue()

    def discard(self) -> None:
        return None


def open_sink(store: ObjectStore, directory: str) -> ObjectSink:
    """The store's own sink for an object under ``directory``, else one in memory."""
    sink = getattr(store, "sink", None)
    if callable(sink):
        try:
            return sink(directory)
        except Exception as e:  # put() will meet the same problem: retried, then dead-lettered
            _LOGGER.debug("cannot open a sink under %r (%s); buffering in memory", directory, e)
    return _MemorySink(store)


def target_args(ctx: BuildContext) -> dict[str, Any]:
    """What :meth:`WriteObjects.of` takes from a target's BuildContext."""
    return {
        "target_name": ctx.name,
        "policy": ctx.delivery,
        "runner": ctx.runner,
        "dead_letter": ctx.dead_letter is not None,
        "redelivering": ctx.redelivering,
        "integration": ctx.integration,
    }


def static_prefix(prefix: str) -> str:
    """The directories of a path template before its first placeholder."""
    prefix = prefix.strip("/")
    if "{" not in prefix:
        return prefix
    head = prefix[: prefix.index("{")]
    return head.rsplit("/", 1)[0] if "/" in head else ""


def object_name(directory: str, window_tag: str, digest: int, fmt: str) -> str:
    stem = f"part-{window_tag}-" if window_tag else "part-"
    name = f"{stem}{digest:032x}"[: len(stem) + 20] + extension(fmt)
    return f"{directory}/{name}" if directory else name


def sharded_name(directory: str, window_tag: str, shard: int, shards: int, chunk: int, fmt: str) -> str:
    stem = f"part-{window_tag}-" if window_tag else "part-"
    name = f"{stem}{shard:05d}-of-{shards:05d}" + (f"-{chunk:03d}" if chunk else "") + extension(fmt)
    return f"{directory}/{name}" if directory else name


def _digest(keys: list[tuple[Any, Any]], salt: str = "") -> int:
    """An order-independent 128-bit digest of the events' (source, id) pairs.

    ``salt`` is the writer's place in the pipeline: two writers of one target (one per
    input, see the compiler) may hold the same ids with different contents — e.g. the
    same event dead-lettered by two targets — and must not overwrite each other.
    """
    try:
        text = orjson.dumps([salt, sorted(keys)])  # the common case: strings, sorted as they are
    except TypeError:  # ids or sources of other types
        text = orjson.dumps([salt, sorted((str(s), str(i)) for s, i in keys)])
    return int.from_bytes(hashlib.blake2b(text, digest_size=16).digest(), "big")


def _window_tag(window: Any) -> str:
    if isinstance(window, GlobalWindow):
        return ""
    return str(window.start.to_utc_datetime().strftime("%Y%m%dT%H%M%S"))


@dataclass
class _Part:
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


class _WriteObjectsFn(beam.DoFn):
    salt = ""  # the full label of the WriteObjects it belongs to (see _digest)
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
        self._parts: dict[tuple[str, Any], _Part] = {}

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
                part = parts[key] = _Part(key[0], window, self._fmt, open_sink(self._store, key[0]))
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

    def _flush(self, part: _Part) -> list[Any]:
        name = object_name(part.directory, _window_tag(part.window), _digest(part.keys, self.salt), self._fmt)
        return self._flush_named(part, name)

    def _flush_named(self, part: _Part, name: str) -> list[Any]:
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
                beam.pvalue.TaggedOutput(DEAD, _in_window(dead_letter(ev, why, "deliver"), part.window))
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


def _in_window(event: CloudEvent, window: Any) -> Any:
    # Outputs of finish_bundle need an explicit window.
    return beam.transforms.window.WindowedValue(event, window.max_timestamp(), (window,))


class _WindowedWriteObjectsFn(_WriteObjectsFn):
    """The same, with fixed windows: time placeholders and object names take the window's start."""

    def process(self, event: CloudEvent | EventBatch, window=beam.DoFn.WindowParam):
        when = None if isinstance(window, GlobalWindow) else window.start.to_utc_datetime()
        self._add(each_event(event), window, when)
        if self._dead:
            dead, self._dead = self._dead, []
            return dead
        return  # no output: Beam's fast path (a generator costs more per element)


_GLOBAL = GlobalWindow()
# Element timestamps a window can be named by (its start in UTC, as a date): years 1 to 9999.
_EARLIEST = Timestamp.from_utc_datetime(datetime.datetime(1, 1, 2, tzinfo=datetime.UTC))
_LATEST = Timestamp.from_utc_datetime(datetime.datetime(9999, 12, 30, tzinfo=datetime.UTC))


class _StampFn(beam.DoFn):
    """Before windowing: an element without a time of its own takes the time it is written.

    Bounded sources (files, ``generate`` with ``count``, Beam's ``Create``) emit their
    elements at Beam's minimum timestamp, thousands of centuries before any date: a window
    there has no calendar start to name an object or fill ``{yyyy}`` by. Such elements
    (and any outside years 1–9999) fall into the window of the moment they reach the
    target; elements of unbounded sources keep their timestamps (publish time, arrival).
    """

    def process(self, element: Any, timestamp=beam.DoFn.TimestampParam):
        if _EARLIEST <= timestamp <= _LATEST:
            yield element
        else:
            yield TimestampedValue(element, Timestamp.now())


# --------------------------------------------------------------------------- commit: window


class _KeyFn(beam.DoFn):
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


class _WriteGroupFn(_WriteObjectsFn):
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
        tag = _window_tag(window)
        chunk = 0
        part: _Part | None = None
        for event in events:
            why = self._reject(event) if self._reject is not None else None
            if why:
                yield beam.pvalue.TaggedOutput(DEAD, dead_letter(event, why, "deliver"))
                continue
            if part is None:
                part = _Part(directory, window, self._fmt, open_sink(self._store, directory))
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


class WriteObjects(beam.PTransform):
    """``PCollection[CloudEvent]`` → dead letters, through an :class:`ObjectStore`."""

    def __init__(
        self,
        make_store: Callable[[], ObjectStore],
        *,
        prefix: str,
        format: str,  # noqa: A002 - the config key's name
        target_name: str,
        window: float | None = None,
        max_events: int | None = None,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        policy: RetryPolicy | None = None,
        commit: str = "auto",
        shards: int = 1,
        runner: str = "direct",
        dead_letter: bool = True,
        reject: Callable[[CloudEvent], str | None] | None = None,
        redelivering: bool = False,
        dedupe_window: float = DEFAULT_DEDUPE_WINDOW,
        integration: str = "",
    ):
        super().__init__()
        # the ledger (commit: bundle only) is kept when some source may redeliver after a crash
        self._dedupe_window = float(dedupe_window) if redelivering else 0.0
        self._integration = integration
        self._dead_letter = dead_letter
        self._reject = reject  # a picklable check: a reason to dead-letter one event, or None
        if commit not in ("auto", "bundle", "window"):
            raise ValueError(f"commit: must be auto, bundle or window, got {commit!r}")
        if shards < 1:
            raise ValueError(f"shards: must be >= 1, got {shards}")
        if commit == "auto":
            commit = "window" if runner in ("flink", "dataflow") else "bundle"
        self._commit = commit
        self._shards = shards
        if format not in CONTENT_TYPES:
            raise ValueError(f"format: must be one of jsonl, avro, parquet, got {format!r}")
        if max_events is not None and max_events < 1:
            raise ValueError(f"max_events: must be >= 1, got {max_events}")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes: must be >= 1, got {max_bytes}")
        self._make_store = make_store
        self._prefix = prefix.strip("/")
        self._format = format
        self._name = target_name
        self._window = window
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._policy = policy or RetryPolicy()

    @classmethod
    def of(
        cls,
        make_store: Callable[[], ObjectStore],
        config: ObjectTargetFields,
        *,
        prefix: str,
        reject: Callable[[CloudEvent], str | None] | None = None,
        **target: Any,
    ) -> WriteObjects:
        """From a target's config (:class:`ObjectTargetFields`) and :func:`target_args` of its context."""
        return cls(
            make_store,
            prefix=prefix,
            format=config.format,
            window=float(config.window) if config.window else None,
            max_events=config.max_events,
            max_bytes=config.max_bytes,
            commit=config.commit,
            shards=config.shards,
            dedupe_window=float(config.dedupe_window),
            reject=reject,
            **target,
        )

    def expand(self, events):
        window = self._window
        if window is None and events.pipeline.options.view_as(StandardOptions).streaming:
            window = DEFAULT_STREAMING_WINDOW  # a global window would put a whole stream in one name space
        if window:
            events = (
                events
                | "Stamp" >> beam.ParDo(_StampFn())
                | "Window" >> beam.WindowInto(beam.window.FixedWindows(float(window)))
            )
        if self._commit == "window":
            grouped = (
                events
                | "Shard" >> beam.ParDo(_KeyFn(self._prefix, self._shards))
                | "Group" >> beam.GroupByKey()
            )
            group_fn = _WriteGroupFn(
                self._make_store,
                self._prefix,
                self._format,
                self._max_events,
                self._max_bytes,
                self._name,
                self._policy,
                self._shards,
                self._dead_letter,
                self._reject,
            )
            return (grouped | "Write" >> beam.ParDo(group_fn).with_outputs(DEAD, main="written"))[DEAD]
        fn_type = _WindowedWriteObjectsFn if window else _WriteObjectsFn
        fn = fn_type(
            self._make_store,
            self._prefix,
            self._format,
            self._max_events,
            self._max_bytes,
            self._name,
            self._policy,
            self._dead_letter,
            self._reject,
        )
        current = getattr(events.pipeline, "_current_transform", None)
        fn.salt = current().full_label if current is not None else ""
        if self._dedupe_window > 0:
            writer = f"{self._integration}\0{self._prefix}\0{fn.salt}"
            fn.ledger_spec = (ledger_root(static_prefix(self._prefix), writer), self._dedupe_window)
        written = events | "Write" >> beam.ParDo(fn).with_outputs(DEAD, main="written")
        return written[DEAD]
