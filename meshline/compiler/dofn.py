"""The router's Beam DoFn: :class:`RouteFn` runs one source's :class:`~meshline.compiler.router.Router`.

The top layer of the router stack (see :mod:`meshline.compiler.plan`): it builds
the router in ``setup()`` from a picklable plan, routes each element (an event, or
an :class:`~meshline.events.EventBatch` that sources reading many events at once
emit), tags the outputs with target names and reports counts as Beam metrics once
per bundle, and to the live progress line (:mod:`meshline.compiler.progress`) while
the bundle runs.

An input batch's outputs for a target that takes batches (``Component.batches``)
stay one :class:`~meshline.events.EventBatch` element, so a Beam element is paid once
per batch instead of once per event.

When some trigger has a batched step, :func:`route_fn` gives ``_BatchedRouteFn`` (a
``process`` with window parameters, flushing in ``finish_bundle`` so an
acknowledging source still acknowledges only after its bundle's outputs were
emitted): buffered events are emitted later than they arrived, each with the
timestamp and window of the input event it derives from. Every other source keeps
the plain ``process(event)`` (Beam's fast invocation path).
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline import observe
from meshline.compiler import progress
from meshline.compiler.plan import DROPPED, TriggerPlan, has_batched_step
from meshline.compiler.router import Router
from meshline.events import CloudEvent, EventBatch, each_event

__all__ = ["RouteFn", "route_fn"]

_LOGGER = logging.getLogger(__name__)
# Counts reach the live progress line (meshline.compiler.progress) at most this often; the
# clock is read once per _PROGRESS_CHECK events, so the hot path stays one integer compare.
_PROGRESS_INTERVAL = 0.5
_PROGRESS_CHECK = 256


_GC_TUNED = False


def _tune_gc() -> None:
    """Once per worker process: make Python's cycle collector rarely run.

    Events are trees of dicts and lists without cycles, freed by reference counting;
    the cycle collector only re-scans them. With the default threshold (700
    allocations) it runs every few events and each full pass walks every live
    object of the worker. Objects alive at start-up are frozen out of its scans.
    """
    global _GC_TUNED
    if _GC_TUNED:
        return
    _GC_TUNED = True
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(50_000, max(g1, 20), max(g2, 20))


class RouteFn(beam.DoFn):
    """Runs a :class:`Router`; outputs are tagged with target names.

    :func:`route_fn` picks :class:`_BatchedRouteFn` for triggers with a batched
    step; every other source keeps this plain ``process(event)`` (Beam's fast
    invocation path).
    """

    def __init__(
        self,
        source: str,
        triggers: list[TriggerPlan],
        integration: str,
        batch_tags: frozenset[str] = frozenset(),
    ):
        self._source = source
        self._plans = triggers
        self._integration = integration
        # tags whose target takes EventBatch elements: an input batch's events for them stay batched
        self._batch_tags = batch_tags - {DROPPED}

    def setup(self):
        self._router = Router(self._plans, self._integration)
        self._counters: dict[str, Any] = {}
        _tune_gc()

    def teardown(self):
        router = getattr(self, "_router", None)
        if router is not None:
            router.close()

    def start_bundle(self):
        self._emitted: dict[str, int] = {}
        self._reported: dict[str, int] = {}
        self._values: dict[str, int] = {}  # this bundle's counter values, added to Beam's at its end
        self._pending = 0
        self._next_report = time.monotonic() + _PROGRESS_INTERVAL

    def process(self, event: CloudEvent | EventBatch):
        """An event or a batch, routed: one batch per tag that takes batches, else one by one."""
        events = each_event(event)
        self._pending += len(events)
        if self._pending >= _PROGRESS_CHECK:
            self._maybe_report()
        routed = self._router.route_many(events)
        if not routed:
            return None
        batch_tags = self._batch_tags
        groups: dict[str, list[CloudEvent]] = {}
        for tag, e in routed:
            group = groups.get(tag)
            if group is None:
                group = groups[tag] = []
            group.append(e)
        emitted = self._emitted
        outputs: list[beam.pvalue.TaggedOutput] = []
        for tag, group in groups.items():
            emitted[tag] = emitted.get(tag, 0) + len(group)
            if tag in batch_tags and len(group) > 1:
                outputs.append(beam.pvalue.TaggedOutput(tag, EventBatch(group)))
            elif tag != DROPPED:
                outputs.extend(beam.pvalue.TaggedOutput(tag, e) for e in group)
        return outputs

    def _maybe_report(self) -> None:
        self._pending = 0
        now = time.monotonic()
        if now >= self._next_report:
            self._next_report = now + _PROGRESS_INTERVAL
            self._report_progress()

    def _report_progress(self) -> None:
        """The counts since the last report: to the progress line now, to Beam's counters at bundle end."""
        r = self._router
        deltas = {f"source.{self._source}.in": r.seen}
        deltas.update(r.metrics())  # deltas since its last call (it resets)
        for tag, n in self._emitted.items():
            name = "deadletter.dropped" if tag == DROPPED else f"target.{tag}.in"
            deltas[name] = deltas.get(name, 0) + n - self._reported.get(tag, 0)
        self._reported = dict(self._emitted)
        values = self._values
        for name, n in deltas.items():
            if n:
                values[name] = values.get(name, 0) + n
        progress.add(deltas)
        self._pending = 0

    def finish_bundle(self):
        self._report_progress()
        dropped = self._emitted.get(DROPPED, 0)
        if dropped:
            _LOGGER.warning(
                "%d event(s) failed in this bundle and no dead-letter target is configured; last error: %s",
                dropped,
                self._router.last_dropped_error,
            )
        self._inc(self._values)
        self._values = {}
        self._emitted = {}
        self._reported = {}

    def _inc(self, values: dict[str, int]) -> None:
        for name, n in values.items():
            if n:
                c = self._counters.get(name)
                if c is None:
                    c = self._counters[name] = beam.metrics.Metrics.counter("meshline", name)
                c.inc(n)


class _BatchedRouteFn(RouteFn):
    """:class:`RouteFn` for triggers with batched steps: outputs keep their own event's timestamp and window.

    Buffered events are emitted later than they arrived (when a buffer fills, or in
    ``finish_bundle``), so every output is a ``WindowedValue`` carrying the
    timestamp and window of the input event it derives from.
    """

    def process(
        self, event: CloudEvent | EventBatch, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam
    ):
        events = each_event(event)
        self._pending += len(events)
        if self._pending >= _PROGRESS_CHECK:
            self._maybe_report()
        meta = (timestamp, window)
        route = self._router.route_batched
        routed = [out for e in events for out in route(e, meta)]
        if not routed:
            return None
        return self._windowed(routed)

    def _windowed(self, routed: list[tuple[str, CloudEvent, Any]]) -> list[Any]:
        emitted = self._emitted
        outputs = []
        for tag, e, (timestamp, window) in routed:
            emitted[tag] = emitted.get(tag, 0) + 1
            if tag != DROPPED:
                outputs.append(beam.pvalue.TaggedOutput(tag, WindowedValue(e, timestamp, (window,))))
        return outputs

    def finish_bundle(self):
        # Everything buffered is emitted in this bundle, before the runner commits it
        # (an acknowledging source acknowledges only after that).
        outputs = self._windowed(self._router.flush())
        super().finish_bundle()
        return outputs


class _Observing:
    """What the observed router DoFns share: taps follow :data:`meshline.observe.TAP_VERSION`."""

    _source: str
    _router: Router
    _tap_version = -1

    def _sync_taps(self) -> None:
        from meshline.compiler.observed import unwatch, watch

        self._tap_version = observe.TAP_VERSION
        unwatch(self._router)
        if observe.TAPPING:
            watch(self._router)


class _ObservedRouteFn(_Observing, RouteFn):
    """:class:`RouteFn` while a run is watched (``--metrics-port``, ``--ui``, ``meshline tap``).

    It takes each element's timestamp (the slower invocation path, hence its own class)
    to stamp the events it hands to each target (:func:`meshline.observe.stamp`: the
    delivery-latency histogram), and offers events to the taps open on this source,
    its triggers and steps (:mod:`meshline.compiler.observed`) and its targets.
    """

    def process(  # type: ignore[override]
        self, event: CloudEvent | EventBatch, timestamp=beam.DoFn.TimestampParam
    ):
        if self._tap_version != observe.TAP_VERSION:
            self._sync_taps()
        tapping = observe.TAPPING
        if tapping:
            observe.offer(f"source.{self._source}", list(each_event(event)))
        outputs = RouteFn.process(self, event)
        if outputs:
            _stamp(outputs, timestamp.micros, tapping)
        return outputs


def _stamp(outputs: list[Any], micros: int, tapping: bool) -> None:
    """The events handed to each target (a batch or one by one): stamped, and offered to its taps."""
    counts: dict[str, int] = {}
    for o in outputs:
        value = o.value
        events = value if type(value) is EventBatch else (value,)
        counts[o.tag] = counts.get(o.tag, 0) + len(events)
        if tapping:
            observe.offer(f"target.{o.tag}", list(events))
    for tag, n in counts.items():
        observe.stamp(tag, micros, n)


class _ObservedBatchedRouteFn(_Observing, _BatchedRouteFn):
    """:class:`_BatchedRouteFn` while a run is watched (see :class:`_ObservedRouteFn`)."""

    def process(
        self, event: CloudEvent | EventBatch, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam
    ):
        if self._tap_version != observe.TAP_VERSION:
            self._sync_taps()
        if observe.TAPPING:
            observe.offer(f"source.{self._source}", list(each_event(event)))
        return super().process(event, timestamp, window)

    def _windowed(self, routed: list[tuple[str, CloudEvent, Any]]) -> list[Any]:
        tapping = observe.TAPPING
        for tag, e, (timestamp, _) in routed:
            if tag != DROPPED:
                observe.stamp(tag, timestamp.micros, 1)
                if tapping:
                    observe.offer(f"target.{tag}", [e])
        return super()._windowed(routed)


def route_fn(
    source: str, triggers: list[TriggerPlan], integration: str, batch_tags: frozenset[str] = frozenset()
) -> RouteFn:
    """The router DoFn of one source: the batched kind only when some trigger needs it.

    ``batch_tags``: targets that take :class:`~meshline.events.EventBatch` elements; an input
    batch's events for them stay one batch (the batched kind emits events one by one).
    """
    watched = observe.ENABLED  # meshline run --metrics-port / --ui, meshline tap
    if has_batched_step(triggers):
        kind: type[RouteFn] = _ObservedBatchedRouteFn if watched else _BatchedRouteFn
        return kind(source, triggers, integration)
    return (_ObservedRouteFn if watched else RouteFn)(source, triggers, integration, batch_tags)
