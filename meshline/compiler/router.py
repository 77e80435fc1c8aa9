"""The router: one source's events → every matching trigger → filters → steps → targets.

All triggers that read one source run inside one function per event (no Beam
stage per filter or step): each trigger is compiled once per worker
(:func:`meshline.compiler.trigger.compile_trigger`). An event that matches several
triggers goes to each (fan-out).

Triggers whose first filter is an ``exact`` on one attribute (``type``, most
often) are indexed by that value, so an event is only offered to the triggers
that can match it: with 50 triggers on ``type`` an event costs one dict lookup
instead of 50 filter calls.

Failures are data: a filter that raises or a step that raises dead-letters the
trigger's input event (stage ``filter`` / ``transform``) and delivers nothing of
that trigger's chain for that event; other triggers are unaffected.

Batched steps (see :mod:`meshline.compiler.batched`): when some trigger has one
(:attr:`Router.batched`), use :meth:`Router.route_batched` and :meth:`Router.flush`
instead of :meth:`Router.route`; they return ``(tag, event, meta)`` where ``meta``
is what was passed with the input event the output derives from.

:class:`Router` is pure Python (unit-tested without Beam); its Beam DoFn is
:class:`meshline.compiler.dofn.RouteFn`. Layering: this module imports the
trigger, chain, batched and plan layers below it, and from
:mod:`meshline.transforms` only :class:`~meshline.transforms.fused.FusedChain`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from meshline.compiler.batched import BatchedChain, Outbox
from meshline.compiler.chain import StepFailed
from meshline.compiler.plan import DROPPED, Stage, TriggerPlan
from meshline.compiler.trigger import CompiledTrigger, compile_trigger
from meshline.errors import FilterError
from meshline.events import CloudEvent, dead_letter
from meshline.transforms.fused import FusedChain
from meshline.transforms.results import STEP_FAILURES

__all__ = ["DROPPED", "Router"]

_Unfit = FusedChain.Unfit


class Router:
    """Routes one source's events through its triggers; emits ``(tag, event)`` pairs.

    ``tag`` is a target name. Dead letters are emitted with the tag of their
    dead-letter target, or :data:`~meshline.compiler.plan.DROPPED` when the trigger
    has none. ``fuse=False`` runs every trigger one by one (tests compare the paths).
    """

    def __init__(self, triggers: list[TriggerPlan], integration: str, fuse: bool = True):
        self.step_counts: dict[str, list[int]] = {}  # step -> [in, out, failed]
        self._outbox = Outbox()  # outputs of batched triggers, and the meta of the current event
        self.triggers: tuple[CompiledTrigger, ...] = tuple(
            compile_trigger(plan, integration, self.step_counts, self._outbox, fuse) for plan in triggers
        )
        self._chains: tuple[BatchedChain, ...] = tuple(t.batched for t in self.triggers if t.batched)
        self._stages: tuple[Stage, ...] = tuple(st for t in self.triggers for st in t.stages)
        index: dict[str, dict[str, list[CompiledTrigger]]] = {}
        general: list[CompiledTrigger] = []
        for t in self.triggers:
            if t.index:
                attr, value = t.index
                index.setdefault(attr, {}).setdefault(value, []).append(t)
            else:
                general.append(t)
        self._index = [(attr, table) for attr, table in index.items()]
        self._general = general
        self.seen = 0
        self.last_dropped_error = ""

    @property
    def batched(self) -> bool:
        """Some trigger has a batched step: use :meth:`route_batched` and :meth:`flush`."""
        return bool(self._chains)

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

    def _run(self, t: CompiledTrigger, event: CloudEvent, out: list[tuple[str, CloudEvent]]) -> None:
        c = t.counts
        fused = t.fused
        if fused is not None:
            try:
                o = fused.run(event)
            except _Unfit:
                pass  # the one-by-one path below gives the outputs, counts and errors
            else:
                if o is not None:
                    c.fused += 1
                    out.append((t.target, o))
                return
        self._one_by_one(t, t.run_steps, event, out)

    def _one_by_one(
        self,
        t: CompiledTrigger,
        run_steps: Callable[[CloudEvent], list[CloudEvent]] | None,
        event: CloudEvent,
        out: list[tuple[str, CloudEvent]],
    ) -> None:
        """``t``'s filters, then ``run_steps`` (its steps; a tap's offering ones), one event."""
        c = t.counts
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
        if run_steps is None:
            c.out += 1
            out.append((t.target, event))
            return
        try:
            outputs = run_steps(event)
        except StepFailed as f:
            c.transform_failed += 1
            out.append(self._dead(t, dead_letter(event, f.error, "transform", t.name, f.step)))
            return
        c.out += len(outputs)
        target = t.target
        for o in outputs:
            out.append((target, o))

    def _dead(self, t: CompiledTrigger, event: CloudEvent) -> tuple[str, CloudEvent]:
        if t.dead == DROPPED:
            self.last_dropped_error = event.attributes.get("meshlineerror", "")
        return t.dead, event

    # -- batched triggers

    def route_batched(self, event: CloudEvent, meta: Any) -> list[tuple[str, CloudEvent, Any]]:
        """:meth:`route` for a batched router: this event's outputs plus those of any buffer it filled."""
        self._outbox.meta = meta
        out: list[tuple[str, CloudEvent, Any]] = [(tag, e, meta) for tag, e in self.route(event)]
        if self._outbox.items:
            out.extend(self._taken())
        return out

    def flush(self) -> list[tuple[str, CloudEvent, Any]]:
        """Run every buffered event through the rest of its chain (call at the end of a bundle)."""
        for chain in self._chains:
            chain.flush()
        return self._taken()

    def _taken(self) -> list[tuple[str, CloudEvent, Any]]:
        items = self._outbox.take()
        for tag, e, _ in items:
            if tag == DROPPED:
                self.last_dropped_error = e.attributes.get("meshlineerror", "")
        return items

    def pending(self) -> int:
        """Events waiting in buffers."""
        return sum(chain.pending() for chain in self._chains)

    def close(self) -> None:
        """Release what the steps hold (thread pools …): steps with a ``close()`` method."""
        for st in self._stages:
            close = getattr(st.fn, "close", None)
            if callable(close):
                close()

    def metrics(self) -> dict[str, int]:
        """Counter deltas since the last call, keyed by metric name (then reset)."""
        out: dict[str, int] = {}
        for t in self.triggers:
            c = t.counts
            n = c.fused  # each matched, passed every step and came out
            c.matched += n
            c.out += n
            for st in t.stages:
                st.counts[0] += n
                st.counts[1] += n
            p = f"trigger.{t.name}."
            out[p + "in"] = out.get(p + "in", 0) + self.seen
            out[p + "matched"] = c.matched
            out[p + "out"] = c.out
            out[p + "filter_errors"] = c.filter_failed
            out[p + "cesql_errors"] = c.stats.cesql_errors
            out[p + "transform_errors"] = c.transform_failed
            out[p + "dead_lettered"] = c.filter_failed + c.transform_failed
            c.reset()
        for step, (n_in, n_out, failed) in self.step_counts.items():
            out[f"step.{step}.in"] = out.get(f"step.{step}.in", 0) + n_in
            out[f"step.{step}.out"] = out.get(f"step.{step}.out", 0) + n_out
            out[f"step.{step}.failed"] = out.get(f"step.{step}.failed", 0) + failed
            self.step_counts[step][:] = [0, 0, 0]
        self.seen = 0
        return out


def _str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
