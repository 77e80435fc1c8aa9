"""The core of the object-store targets (``aws.s3``, ``azure.datalake``, ``google.storage``).

A target supplies an :class:`~meshline.connectors.objects_store.ObjectStore` (``put`` one
whole object, ``close``); :class:`WriteObjects` does the rest, the same way for every store:

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

The pieces, each importing only those before it: :mod:`.objects_config` (the config
keys), :mod:`.objects_store` (the seam a target fills), :mod:`.objects_naming` (object
names, content types), :mod:`.objects_bundle` and :mod:`.objects_window` (the writers of
``commit: bundle`` and ``commit: window``); this module wires them into :class:`WriteObjects`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import apache_beam as beam
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.transforms.window import FixedWindows, TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from meshline.connectors.delivery import RetryPolicy
from meshline.connectors.ledger import ledger_root
from meshline.connectors.objects_bundle import DEAD, WindowedWriteObjectsFn, WriteObjectsFn
from meshline.connectors.objects_config import (
    DEFAULT_DEDUPE_WINDOW,
    DEFAULT_MAX_BYTES,
    DEFAULT_STREAMING_WINDOW,
    ObjectTargetFields,
)
from meshline.connectors.objects_naming import CONTENT_TYPES, static_prefix
from meshline.connectors.objects_store import ObjectStore
from meshline.connectors.objects_window import KeyFn, WriteGroupFn
from meshline.events import CloudEvent

if TYPE_CHECKING:
    from meshline.registry import BuildContext

__all__ = ["WriteObjects", "target_args"]


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


class WriteObjects(beam.PTransform):
    """``PCollection[CloudEvent]`` → dead letters, through an :class:`.objects_store.ObjectStore`."""

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
                | "Window" >> beam.WindowInto(FixedWindows(float(window)))
            )
        if self._commit == "window":
            grouped = (
                events
                | "Shard" >> beam.ParDo(KeyFn(self._prefix, self._shards))
                | "Group" >> beam.GroupByKey()
            )
            group_fn = WriteGroupFn(
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
        fn_type = WindowedWriteObjectsFn if window else WriteObjectsFn
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
