"""A trigger's steps with buffers for batched steps: :class:`BatchedChain`.

A transformation whose ``Component.batched`` is true and whose built object has
``batch_size > 1`` (e.g. ``http`` with ``batch``/``concurrency``, ``python``) is not
called per event: the events reaching it are buffered, and the buffer is handed to
the step's ``batch(events)`` when it holds ``batch_size`` events and at the end of
every bundle (:meth:`BatchedChain.flush`); each result then continues through the
rest of the chain.

Failure semantics stay per input event: a step failing on anything derived from
an input event dead-letters that input event (once) and nothing of the
trigger's chain for it is delivered. Events a batch produced as a whole
(:attr:`~meshline.transforms.results.BatchResult.extra`, attributable to no input
event) are their own origin: a later failure dead-letters that event itself.
Outputs and dead letters of buffered events carry the ``meta`` (timestamp and
window) of the input event they derive from.

Composition, not inheritance: a batched trigger (:class:`~meshline.compiler.trigger.CompiledTrigger`)
owns one :class:`BatchedChain`; every chain of a router writes its outputs to the
router's one :class:`Outbox`, which also carries the ``meta`` of the event being
routed. This module knows the plan layer below it and nothing above.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshline.compiler.plan import Stage, TriggerCounts
from meshline.events import CloudEvent, dead_letter
from meshline.transforms.results import STEP_FAILURES, BatchResult

__all__ = ["BatchedChain", "Outbox"]


class Outbox:
    """Where batched chains put ``(tag, event, meta)`` outputs; ``meta`` is the current event's."""

    __slots__ = ("items", "meta")

    def __init__(self) -> None:
        self.items: list[tuple[str, CloudEvent, Any]] = []
        self.meta: Any = None

    def take(self) -> list[tuple[str, CloudEvent, Any]]:
        items, self.items = self.items, []
        return items


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


class BatchedChain:
    """The steps of one trigger, some batched: events in by :meth:`enter`, outputs to the outbox."""

    __slots__ = ("_buffers", "_counts", "_dead", "_name", "_outbox", "_stages", "_target")

    def __init__(
        self,
        name: str,
        stages: Sequence[Stage],
        target: str,
        dead: str,
        counts: TriggerCounts,
        outbox: Outbox,
    ) -> None:
        self._name = name  # the trigger's
        self._stages = tuple(stages)
        self._target = target
        self._dead = dead  # the tag of its dead letters
        self._counts = counts  # the trigger's: out and transform_failed are counted here
        self._outbox = outbox
        self._buffers: list[list[_Item]] = [[] for _ in stages]

    def enter(self, event: CloudEvent) -> list[CloudEvent]:
        """Run ``event`` (it matched the trigger) as far as the first full buffer allows.

        Returns no outputs: they and dead letters go to the outbox with ``outbox.meta``.
        """
        self._advance(0, [(event, _Origin(event, self._outbox.meta))])
        return []

    def flush(self) -> None:
        """Run every buffered event through the rest of its chain (at the end of a bundle)."""
        for i, st in enumerate(self._stages):  # in chain order: a flush only fills later buffers
            buf = self._buffers[i]
            if buf:
                self._buffers[i] = []
                self._advance(i + 1, self._call_batch(st, buf))

    def pending(self) -> int:
        """Events waiting in buffers."""
        return sum(len(b) for b in self._buffers)

    def _advance(self, start: int, items: list[_Item]) -> None:
        """Run ``items`` through the chain from stage ``start``; batched stages buffer (flush when full)."""
        stages = self._stages
        i = start
        while items and i < len(stages):
            st = stages[i]
            if st.batch_size:
                buf = self._buffers[i]
                buf.extend(items)
                if len(buf) < st.batch_size:
                    return
                self._buffers[i] = []
                items = self._call_batch(st, buf)
            else:
                items = self._call_each(st, items)
            i += 1
        for e, o in items:  # the end of the chain
            if o.failed:
                continue
            o.outputs.append(e)
            o.alive -= 1
            if o.alive == 0:
                self._deliver(o)

    def _call_each(self, st: Stage, items: list[_Item]) -> list[_Item]:
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
                self._fail(o, st.name, exc)
                continue
            self._take(st, o, r, out)
        return out

    def _call_batch(self, st: Stage, buf: list[_Item]) -> list[_Item]:
        live = [item for item in buf if not item[1].failed]
        if not live:
            return []
        events = [e for e, _ in live]
        counts = st.counts
        counts[0] += len(events)
        results: Sequence[Any]
        extra: Sequence[Any]
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
                self._fail(o, st.name, res)
            elif not o.failed:  # else: an earlier event of the same origin failed in this batch
                self._take(st, o, res, out)
        if extra:
            counts[1] += len(extra)
            meta = live[0][1].meta
            out.extend((x, _Origin(x, meta)) for x in extra)
        return out

    def _take(self, st: Stage, o: _Origin, r: Any, out: list[_Item]) -> None:
        """Record step result ``r`` for an event of origin ``o``; its events go on in ``out``."""
        if r is None:
            produced: list[CloudEvent] = []
        elif type(r) is CloudEvent:
            produced = [r]
        elif isinstance(r, list):
            for x in r:
                if not isinstance(x, CloudEvent):
                    st.counts[2] += 1
                    self._fail(o, st.name, TypeError(f"step returned {type(x).__name__}"))
                    return
            produced = r
        else:
            st.counts[2] += 1
            self._fail(o, st.name, TypeError(f"step returned {type(r).__name__}"))
            return
        st.counts[1] += len(produced)
        o.alive += len(produced) - 1
        if not produced:
            if o.alive == 0:
                self._deliver(o)
            return
        for x in produced:
            out.append((x, o))

    def _deliver(self, o: _Origin) -> None:
        outputs, o.outputs = o.outputs, []
        self._counts.out += len(outputs)
        items = self._outbox.items
        for e in outputs:
            items.append((self._target, e, o.meta))

    def _fail(self, o: _Origin, step: str, error: BaseException) -> None:
        if o.failed:
            return
        o.failed = True
        o.outputs = []
        self._counts.transform_failed += 1
        dead = dead_letter(o.event, error, "transform", self._name, step)
        self._outbox.items.append((self._dead, dead, o.meta))
