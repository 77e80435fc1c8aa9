"""The router: one source's events → every matching trigger → filters → steps → targets.

All triggers that read one source run inside one function per event (no Beam
stage per filter or step): the whole chain is compiled into closures once per
worker. An event that matches several triggers goes to each (fan-out).

Sources that read many events at once (files, Kafka) emit
:class:`~meshline.events.EventBatch` elements; :meth:`Router.route_many` routes a
batch in one call, and :class:`RouteFn` keeps each batch's outputs for a target
that takes batches (``Component.batches``) as one element, so a Beam element is
paid once per batch instead of once per event.

Triggers whose first filter is an ``exact`` on one attribute (``type``, most
often) are indexed by that value, so an event is only offered to the triggers
that can match it: with 50 triggers on ``type`` an event costs one dict lookup
instead of 50 filter calls.

Failures are data: a filter that raises or a step that raises dead-letters the
trigger's input event (stage ``filter`` / ``transform``) and delivers nothing of
that trigger's chain for that event; other triggers are unaffected.

:class:`Router` is pure Python (unit-tested without Beam); :class:`RouteFn` is
its DoFn, which builds the router in ``setup()`` from a picklable plan and
reports counts as Beam metrics once per bundle.

Batched steps (a transformation whose ``Component.batched`` is true and whose
built object has ``batch_size > 1``, e.g. ``http`` with ``batch``/``concurrency``)
are not called per event: the events reaching such a step are buffered per
trigger and step, and the buffer is handed to the step's ``batch(events)`` when
it holds ``batch_size`` events and at the end of every bundle
(:meth:`Router.flush`); each result then continues through the rest of the
chain. Failure semantics stay per input event: a step failing on anything
derived from an input event dead-letters that input event (once) and nothing of
the trigger's chain for it is delivered; events a batch produced as a whole
(:attr:`BatchResult.extra`, attributable to no input event) are their own
origin: a later failure dead-letters that event itself. Outputs and dead letters
of buffered events carry the ``meta`` (timestamp and window) of the input event
they derive from; :class:`RouteFn` becomes ``_BatchedRouteFn`` (a ``process``
with window parameters, flushing in ``finish_bundle`` so an acknowledging source
still acknowledges only after its bundle's outputs were emitted) only when some
trigger has a batched step.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.compiler import progress
from meshline.compiler.router_batch import (
    STEP_FAILURES,
    BatchedRouting,
    BatchResult,
    StepResult,
    _Item,
    _Stage,
)
from meshline.errors import FilterError
from meshline.events import CloudEvent, EventBatch, dead_letter, each_event
from meshline.registry import BuildContext, lookup
from meshline.transforms.filters import FilterStats, compile_filters, exact_index_key
from meshline.transforms.jq import chain_failed
from meshline.transforms.jqc.pygen import REJECTED
from meshline.transforms.limits import DEFAULT_TIMEOUT
from meshline.transforms.steps import JqConfig, data_only_output

__all__ = ["DROPPED", "BatchResult", "RouteFn", "Router", "StepPlan", "StepResult", "TriggerPlan", "route_fn"]

_LOGGER = logging.getLogger(__name__)
# Counts reach the live progress line (meshline.compiler.progress) at most this often; the
# clock is read once per _PROGRESS_CHECK events, so the hot path stays one integer compare.
_PROGRESS_INTERVAL = 0.5
_PROGRESS_CHECK = 256

DROPPED = "__meshline_dropped__"  # tag for failures with no dead-letter target (counted, not emitted)


@dataclass(frozen=True)
class StepPlan:
    """A step as the router needs it: its parsed config dataclass (:mod:`meshline.spec.resolve`).

    A plan made by hand with the config's mapping (tests) has it parsed here, once,
    where the plan is made: the workers receive the dataclass, never a mapping.
    """

    name: str
    type: str
    config: Any
    directory: str | None = None  # the integration file's directory (BuildContext.directory)

    def __post_init__(self) -> None:
        if isinstance(self.config, dict):
            from meshline.config import parse_config

            component = lookup("transformation", self.type)
            if component is None:
                raise ValueError(f"unknown transformation type {self.type!r}")
            object.__setattr__(self, "config", parse_config(component.config, self.config))


@dataclass(frozen=True)
class TriggerPlan:
    """A trigger as the router needs it: plain data, picklable."""

    name: str
    filters: tuple[dict[str, Any], ...]
    steps: tuple[StepPlan, ...]
    target: str
    dead_letter: str | None
    filter_timeout: float = DEFAULT_TIMEOUT  # seconds one jq filter may take on one event


@dataclass
class _Counts:
    matched: int = 0
    out: int = 0
    filter_failed: int = 0
    transform_failed: int = 0
    stats: FilterStats = field(default_factory=FilterStats)


class _CompiledTrigger:
    __slots__ = (
        "buffers",
        "chain",
        "chain_counts",
        "chain_on_data",
        "chain_out",
        "counts",
        "dead",
        "name",
        "pred",
        "run_steps",
        "stages",
        "target",
    )

    def __init__(self, name: str, pred, run_steps, target: str, dead: str):
        self.name = name
        self.pred = pred
        self.run_steps = run_steps
        self.target = target
        self.dead = dead
        self.counts = _Counts()
        # batched triggers only: the chain and one buffer per stage
        self.stages: list[_Stage] = []
        self.buffers: list[list[_Item]] = []
        # jq filters and jq steps only: all of them as one function (see _trigger_chain)
        self.chain: Callable[[Any], Any] | None = None
        self.chain_counts: list[list[int]] = []  # the counts of its steps
        # its programs read nothing but .data: {"data": data} may stand for the JSON form
        self.chain_on_data = False
        self.chain_out = 0  # events its chain passed since the last metrics(): counted there


def _build_steps(
    steps: tuple[StepPlan, ...], integration: str, step_counts: dict[str, list[int]]
) -> list[_Stage]:
    stages = []
    for s in steps:
        component = lookup("transformation", s.type)
        if component is None:
            raise ValueError(f"unknown transformation type {s.type!r}")
        fn = component.build(
            s.config, BuildContext(integration=integration, name=s.name, directory=s.directory)
        )
        size = int(getattr(fn, "batch_size", 1)) if component.batched else 0
        stages.append(_Stage(s.name, fn, step_counts.setdefault(s.name, [0, 0, 0]), size if size > 1 else 0))
    return stages


def _trigger_chain(
    filters: Sequence[dict[str, Any]], steps: tuple[StepPlan, ...]
) -> tuple[Callable[[Any], Any], bool] | None:
    """A trigger made of jq filters and ``.data``-only jq steps as one generated function.

    The filters and steps of such a trigger cost about ten Python calls per event one
    by one; :func:`meshline.transforms.jq.trigger_chain` writes them as one function
    (``None`` for any other trigger). ``Router._run`` falls back to the one-by-one
    path whenever the function raises, so outputs, counts and errors are the same.
    """
    from meshline.transforms.jq import trigger_chain

    programs = []
    for f in filters:
        if not (isinstance(f, dict) and len(f) == 1 and isinstance(f.get("jq"), str)):
            return None
        programs.append(f["jq"])
    step_programs = []
    for s in steps:
        if s.type != "jq":
            return None
        config: JqConfig = s.config
        if config.scope != "event":
            return None
        step_programs.append(config.program)
    if not programs and not step_programs:
        return None
    return trigger_chain(programs, step_programs)


def _compile_steps(stages: list[_Stage]) -> Callable[[CloudEvent], list[CloudEvent]] | None:
    """Unbatched steps → ``fn(event) -> outputs``; raises ``_StepFailed`` naming the step."""
    if not stages:
        return None
    fns = [(st.name, st.fn, st.counts) for st in stages]

    def run(event: CloudEvent) -> list[CloudEvent]:
        events = [event]
        for name, fn, counts in fns:
            produced: list[CloudEvent] = []
            for e in events:
                counts[0] += 1
                try:
                    r = fn(e)
                except STEP_FAILURES as exc:
                    counts[2] += 1
                    raise _StepFailed(name, exc) from None
                if type(r) is CloudEvent:
                    produced.append(r)
                elif r is not None:
                    produced.extend(_events_of(name, counts, r))
            counts[1] += len(produced)
            events = produced
            if not events:
                break
        return events

    return run


def _events_of(name: str, counts: list[int], r: Any) -> list[CloudEvent]:
    """A step's list result, checked; anything else it returned is its failure."""
    if isinstance(r, list):
        for x in r:
            if not isinstance(x, CloudEvent):
                counts[2] += 1
                raise _StepFailed(name, TypeError(f"step returned {type(x).__name__}"))
        return r
    counts[2] += 1
    raise _StepFailed(name, TypeError(f"step returned {type(r).__name__}"))


class _StepFailed(Exception):
    def __init__(self, step: str, error: BaseException):
        super().__init__(step)
        self.step = step
        self.error = error


class Router(BatchedRouting):
    """Routes one source's events through its triggers; emits ``(tag, event)`` pairs.

    ``tag`` is a target name. Dead letters are emitted with the tag of their
    dead-letter target, or :data:`DROPPED` when the trigger has none.

    When :attr:`batched` (some trigger has a batched step), use :meth:`route_batched`
    and :meth:`flush` instead of :meth:`route`: they return ``(tag, event, meta)``
    where ``meta`` is what was passed with the input event the output derives from.
    """

    def __init__(self, triggers: list[TriggerPlan], integration: str):
        self.step_counts: dict[str, list[int]] = {}  # step -> [in, out, failed]
        self.triggers: list[_CompiledTrigger] = []
        self._stages: list[_Stage] = []
        self._batched: list[_CompiledTrigger] = []
        self._meta: Any = None  # the meta of the event being routed (batched triggers)
        self._ready: list[tuple[str, CloudEvent, Any]] = []  # outputs of batched triggers
        index: dict[str, dict[str, list[_CompiledTrigger]]] = {}
        general: list[_CompiledTrigger] = []
        for plan in triggers:
            key = exact_index_key(plan.filters)
            rest = plan.filters[1:] if key else plan.filters
            stages = _build_steps(plan.steps, integration, self.step_counts)
            self._stages.extend(stages)
            batched = any(st.batch_size for st in stages)
            t = _CompiledTrigger(
                plan.name,
                compile_filters(rest, plan.filter_timeout),
                None if batched else _compile_steps(stages),
                plan.target,
                plan.dead_letter or DROPPED,
            )
            chain = None if batched else _trigger_chain(rest, plan.steps)
            if chain is not None:
                t.chain, t.chain_on_data = chain
                t.chain_counts = [st.counts for st in stages]
            if batched:
                t.stages = stages
                t.buffers = [[] for _ in stages]
                t.run_steps = self._entry(t)
                self._batched.append(t)
            self.triggers.append(t)
            if key:
                index.setdefault(key[0], {}).setdefault(key[1], []).append(t)
            else:
                general.append(t)
        self._index = [(attr, table) for attr, table in index.items()]
        self._general = general
        self.seen = 0
        self.last_dropped_error = ""

    @property
    def batched(self) -> bool:
        """Some trigger has a batched step: use :meth:`route_batched` and :meth:`flush`."""
        return bool(self._batched)

    def route(self, event: CloudEvent) -> list[tuple[str, CloudEvent]]:
        return self.route_many((event,))

    def route_many(self, events: Sequence[CloudEvent]) -> list[tuple[str, CloudEvent]]:
        """The ``(tag, event)`` outputs of ``events``, in order, in one list (a batch: one call)."""
        self.seen += len(events)
        out: list[tuple[str, CloudEvent]] = []
        run = self._run
        index = self._index
        general = self._general
        for event in events:
            if index:
                attrs = event.attributes
                for attr, table in index:
                    v = attrs.get(attr)
                    if v is None:
                        continue
                    candidates = table.get(v if type(v) is str else _str(v))
                    if candidates:
                        for t in candidates:
                            run(t, event, out)
            for t in general:
                run(t, event, out)
        return out

    def _run(self, t: _CompiledTrigger, event: CloudEvent, out: list[tuple[str, CloudEvent]]) -> None:
        c = t.counts
        chain = t.chain
        if chain is not None:
            form_in = event._form
            whole = True
            if form_in is None:
                data = event.data
                if t.chain_on_data and (type(data) is dict or type(data) is list):
                    form_in = {"data": data}  # all the programs read of the form, without building it
                    whole = False
                else:
                    form_in = event.json_form()
            try:
                form = chain(form_in)
            except Exception as e:
                chain_failed(e)
                form = _UNFIT  # the one-by-one path below gives the outputs, counts and errors
            if form is REJECTED:
                return
            if form is not _UNFIT:
                # steps, or filters only
                o = data_only_output(event, form, whole) if t.chain_counts else event
                if o is not None:
                    t.chain_out += 1
                    out.append((t.target, o))
                    return
        if t.pred is not None:
            try:
                if not t.pred(event, c.stats):
                    return
            except STEP_FAILURES as e:
                c.filter_failed += 1
                err = e if isinstance(e, FilterError) else FilterError(f"{type(e).__name__}: {e}")
                out.append(self._dead(t, dead_letter(event, err, "filter", t.name, "")))
                return
        c.matched += 1
        if t.run_steps is None:
            c.out += 1
            out.append((t.target, event))
            return
        try:
            outputs = t.run_steps(event)
        except _StepFailed as f:
            c.transform_failed += 1
            out.append(self._dead(t, dead_letter(event, f.error, "transform", t.name, f.step)))
            return
        c.out += len(outputs)
        target = t.target
        for o in outputs:
            out.append((target, o))

    def _dead(self, t: _CompiledTrigger, event: CloudEvent) -> tuple[str, CloudEvent]:
        if t.dead == DROPPED:
            self.last_dropped_error = event.attributes.get("meshlineerror", "")
        return t.dead, event

    def metrics(self) -> dict[str, int]:
        """Counter deltas since the last call, keyed by metric name (then reset)."""
        out: dict[str, int] = {}
        for t in self.triggers:
            c = t.counts
            n, t.chain_out = t.chain_out, 0  # each matched, passed every step and came out
            c.matched += n
            c.out += n
            for counts in t.chain_counts:
                counts[0] += n
                counts[1] += n
            p = f"trigger.{t.name}."
            out[p + "in"] = out.get(p + "in", 0) + self.seen
            out[p + "matched"] = c.matched
            out[p + "out"] = c.out
            out[p + "filter_errors"] = c.filter_failed
            out[p + "cesql_errors"] = c.stats.cesql_errors
            out[p + "transform_errors"] = c.transform_failed
            out[p + "dead_lettered"] = c.filter_failed + c.transform_failed
            t.counts = _Counts()
        for step, (n_in, n_out, failed) in self.step_counts.items():
            out[f"step.{step}.in"] = out.get(f"step.{step}.in", 0) + n_in
            out[f"step.{step}.out"] = out.get(f"step.{step}.out", 0) + n_out
            out[f"step.{step}.failed"] = out.get(f"step.{step}.failed", 0) + failed
            self.step_counts[step][:] = [0, 0, 0]
        self.seen = 0
        return out


_UNFIT = object()


def _str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


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


def _has_batched_step(triggers: list[TriggerPlan]) -> bool:
    for plan in triggers:
        for s in plan.steps:
            component = lookup("transformation", s.type)
            if component is not None and component.batched:
                return True
    return False


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


def route_fn(
    source: str, triggers: list[TriggerPlan], integration: str, batch_tags: frozenset[str] = frozenset()
) -> RouteFn:
    """The router DoFn of one source: the batched kind only when some trigger needs it.

    ``batch_tags``: targets that take :class:`~meshline.events.EventBatch` elements; an input
    batch's events for them stay one batch (the batched kind emits events one by one).
    """
    if _has_batched_step(triggers):
        return _BatchedRouteFn(source, triggers, integration)
    return RouteFn(source, triggers, integration, batch_tags)
