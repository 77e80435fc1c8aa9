"""Taps on triggers and steps: a router that offers what each trigger and step passes on.

The router's hot path (:meth:`Router._run`) stays as it is; while a tap is open on a
``trigger.T`` or ``step.X`` of a router, :func:`watch` puts an observing ``_run`` on
that router instance (an instance attribute shadows the method that
:meth:`Router.route_many` looks up once per call), and :func:`unwatch` takes it off.

A tapped trigger's outputs are offered as ``trigger.T``. A tapped step needs the
events between steps, which a fused chain never makes: triggers holding a tapped
step run the one-by-one path while the tap is open, with each step's outputs
offered as ``step.X`` (same steps, same counters; batched steps are not tapped).
"""

from __future__ import annotations

from typing import Any

from meshline import observe
from meshline.compiler.chain import run_steps
from meshline.compiler.plan import Stage
from meshline.compiler.router import Router
from meshline.compiler.trigger import CompiledTrigger
from meshline.events import CloudEvent

__all__ = ["unwatch", "watch"]


def _offering(st: Stage) -> Stage:
    fn = st.fn
    key = f"step.{st.name}"

    def offered(event: CloudEvent) -> Any:
        r = fn(event)
        if type(r) is CloudEvent:
            observe.offer(key, [r])
        elif isinstance(r, list):
            observe.offer(key, [e for e in r if isinstance(e, CloudEvent)])
        return r

    return Stage(st.name, st.type, st.config, offered, st.counts, st.batch_size)


def watch(router: Router) -> None:
    """Offer what ``router``'s triggers and steps pass on to the taps open now."""
    stepwise: dict[str, Any] = {}
    for t in router.triggers:
        if t.batched is None and any(observe.tapped(f"step.{st.name}") for st in t.stages):
            stepwise[t.name] = run_steps([_offering(st) for st in t.stages])
    plain = Router._run

    def run(t: CompiledTrigger, event: CloudEvent, out: list[tuple[str, CloudEvent]]) -> None:
        n = len(out)
        steps = stepwise.get(t.name)
        if steps is None:
            plain(router, t, event, out)
        else:  # the one-by-one path with steps that offer their outputs (no fused program)
            router._one_by_one(t, steps, event, out)
        if len(out) > n and observe.tapped(f"trigger.{t.name}"):
            observe.offer(f"trigger.{t.name}", [e for tag, e in out[n:] if tag == t.target])

    router._run = run  # type: ignore[method-assign]


def unwatch(router: Router) -> None:
    router.__dict__.pop("_run", None)
