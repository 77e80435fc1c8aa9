"""Batched steps in the router: buffers per trigger and step, flushed into ``batch(events)``.

A transformation whose ``Component.batched`` is true and whose built object has
``batch_size > 1`` (e.g. ``http`` with ``batch``/``concurrency``) is not called
per event: the events reaching it are buffered per trigger and step, and the
buffer is handed to the step's ``batch(events)`` when it holds ``batch_size``
events and at the end of every bundle (:meth:`BatchedRouting.flush`); each
result then continues through the rest of the chain.

Failure semantics stay per input event: a step failing on anything derived from
an input event dead-letters that input event (once) and nothing of the
trigger's chain for it is delivered. Events a batch produced as a whole
(:attr:`BatchResult.extra`, attributable to no input event) are their own
origin: a later failure dead-letters that event itself. Outputs and dead letters
of buffered events carry the ``meta`` (timestamp and window) of the input event
they derive from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from meshline.events import CloudEvent, dead_letter

# What a step or filter may raise for one event: its failure, dead-lettered. SystemExit too
# (code that calls sys.exit()); KeyboardInterrupt is the run being stopped (Ctrl-C) and goes on.
STEP_FAILURES = (Exception, SystemExit)

if TYPE_CHECKING:
    from meshline.compiler.router import _CompiledTrigger

__all__ = ["BatchResult", "BatchedRouting", "StepResult"]

StepResult = CloudEvent | list[CloudEvent] | None  # what a step returns for one event


class BatchResult(NamedTuple):
    """What a batched step's ``batch(events)`` returns (a plain list means ``results``, no ``extra``)."""

    # one per input event, in input order: a step result, or the exception that event failed with
    results: list[StepResult | BaseException]
    # events the batch produced as a whole (attributable to no input event)
    extra: Sequence[CloudEvent] = ()


class _Stage:
    """One step of a trigger's chain; ``batch_size`` > 0 when the router buffers for ``fn.batch``."""

    __slots__ = ("batch_size", "counts", "fn", "name")

    def __init__(self, name: str, fn: Any, counts: list[int], batch_size: int):
        self.name = name
        self.fn = fn
        self.counts = counts  # shared per step name: [in, out, failed]
        self.batch_size = batch_size


class _Origin:
    """An input event of a batched trigger (or an event a batch produced as a whole).

    ``alive`` counts the events derived from it still in the chain (buffered or
    running); when it reaches 0 its ``outputs`` are delivered, unless it ``failed``.
    """

    __slots__ = ("alive", "event", "failed", "meta", "outputs")

    def __init__(self, event: CloudEvent, meta: Any):
        self.event = event
        self.meta = meta
        self.alive = 1
        self.failed = False
        self.outputs: list[CloudEvent] = []


_Item = tuple[CloudEvent, _Origin]


class BatchedRouting:
    """The batched half of :class:`~meshline.compiler.router.Router` (a mixin: it shares its state)."""

    _batched: list[_CompiledTrigger]
    _stages: list[_Stage]
    _meta: Any
    _ready: list[tuple[str, CloudEvent, Any]]

    def route(self, event: CloudEvent) -> list[tuple[str, CloudEvent]]:
        raise NotImplementedError

    def _dead(self, t: _CompiledTrigger, event: CloudEvent) -> tuple[str, CloudEvent]:
        raise NotImplementedError

    def route_batched(self, event: CloudEvent, meta: Any) -> list[tuple[str, CloudEvent, Any]]:
        """:meth:`route` for a batched router: this event's outputs plus those of any buffer it filled."""
        self._meta = meta
        out: list[tuple[str, CloudEvent, Any]] = [(tag, e, meta) for tag, e in self.route(event)]
        if self._ready:
            out.extend(self._ready)
            self._ready = []
        return out

    def flush(self) -> list[tuple[str, CloudEvent, Any]]:
        """Run every buffered event through the rest of its chain (call at the end of a bundle)."""
        for t in self._batched:
            for i, st in enumerate(t.stages):  # in chain order: a flush only fills later buffers
                buf = t.buffers[i]
                if buf:
                    t.buffers[i] = []
                    self._advance(t, i + 1, self._call_batch(t, st, buf))
        out, self._ready = self._ready, []
        return out

    def pending(self) -> int:
        """Events waiting in buffers."""
        return sum(len(b) for t in self._batched for b in t.buffers)

    def close(self) -> None:
        """Release what the steps hold (thread pools …): steps with a ``close()`` method."""
        for st in self._stages:
            close = getattr(st.fn, "close", None)
            if callable(close):
                close()

    def _entry(self, t: _CompiledTrigger) -> Callable[[CloudEvent], list[CloudEvent]]:
        def enter(event: CloudEvent) -> list[CloudEvent]:
            self._advance(t, 0, [(event, _Origin(event, self._meta))])
            return []  # outputs and dead letters go to self._ready, counted there

        return enter

    def _advance(self, t: _CompiledTrigger, start: int, items: list[_Item]) -> None:
        """Run ``items`` through the chain from stage ``start``; batched stages buffer (flush when full)."""
        stages = t.stages
        i = start
        while items and i < len(stages):
            st = stages[i]
            if st.batch_size:
                buf = t.buffers[i]
                buf.extend(items)
                if len(buf) < st.batch_size:
                    return
                t.buffers[i] = []
                items = self._call_batch(t, st, buf)
            else:
                items = self._call_each(t, st, items)
            i += 1
        for e, o in items:  # the end of the chain
            if o.failed:
                continue
            o.outputs.append(e)
            o.alive -= 1
            if o.alive == 0:
                self._deliver(t, o)

    def _call_each(self, t: _CompiledTrigger, st: _Stage, items: list[_Item]) -> list[_Item]:
        out: list[_Item] = []
        counts = st.counts
        for e, o in items:
            if o.failed:
                continue
            counts[0] += 1
            try:
                r = st.fn(e)
            except STEP_FAILURES as exc:
                counts[2] += 1
                self._fail(t, o, st.name, exc)
                continue
            self._take(t, st, o, r, out)
        return out

    def _call_batch(self, t: _CompiledTrigger, st: _Stage, buf: list[_Item]) -> list[_Item]:
        live = [item for item in buf if not item[1].failed]
        if not live:
            return []
        events = [e for e, _ in live]
        counts = st.counts
        counts[0] += len(events)
        try:
            r = st.fn.batch(events)
            results, extra = (r.results, r.extra) if isinstance(r, BatchResult) else (r, ())
            if len(results) != len(events):
                raise TypeError(f"batch() returned {len(results)} results for {len(events)} events")
            for x in extra:
                if not isinstance(x, CloudEvent):
                    raise TypeError(f"batch() returned {type(x).__name__}")
        except STEP_FAILURES as exc:
            results, extra = [exc] * len(events), ()
        out: list[_Item] = []
        for (_, o), res in zip(live, results, strict=True):
            if isinstance(res, BaseException):
                counts[2] += 1
                self._fail(t, o, st.name, res)
            elif not o.failed:  # else: an earlier event of the same origin failed in this batch
                self._take(t, st, o, res, out)
        if extra:
            counts[1] += len(extra)
            meta = live[0][1].meta
            out.extend((x, _Origin(x, meta)) for x in extra)
        return out

    def _take(self, t: _CompiledTrigger, st: _Stage, o: _Origin, r: Any, out: list[_Item]) -> None:
        """Record step result ``r`` for an event of origin ``o``; its events go on in ``out``."""
        if r is None:
            produced: list[CloudEvent] = []
        elif type(r) is CloudEvent:
            produced = [r]
        elif isinstance(r, list):
            for x in r:
                if not isinstance(x, CloudEvent):
                    st.counts[2] += 1
                    self._fail(t, o, st.name, TypeError(f"step returned {type(x).__name__}"))
                    return
            produced = r
        else:
            st.counts[2] += 1
            self._fail(t, o, st.name, TypeError(f"step returned {type(r).__name__}"))
            return
        st.counts[1] += len(produced)
        o.alive += len(produced) - 1
        if not produced:
            if o.alive == 0:
                self._deliver(t, o)
            return
        for x in produced:
            out.append((x, o))

    def _deliver(self, t: _CompiledTrigger, o: _Origin) -> None:
        outputs, o.outputs = o.outputs, []
        t.counts.out += len(outputs)
        ready = self._ready
        for e in outputs:
            ready.append((t.target, e, o.meta))

    def _fail(self, t: _CompiledTrigger, o: _Origin, step: str, error: BaseException) -> None:
        if o.failed:
            return
        o.failed = True
        o.outputs = []
        t.counts.transform_failed += 1
        tag, dead = self._dead(t, dead_letter(o.event, error, "transform", t.name, step))
        self._ready.append((tag, dead, o.meta))
