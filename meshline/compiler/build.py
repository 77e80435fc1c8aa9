"""Build phase: a resolved integration (:mod:`meshline.spec.resolve`) → transforms on a Beam pipeline.

Shape of every pipeline (labels are stable, so Dataflow update and metrics keep
their names)::

    Source[S] ──events──▶ Route[S] ──tag T──▶ Flatten ─▶ Target[T] ──failures──▶ (dead-letter target)
        └──decode failures──────────────────────────────▶ (dead-letter target)

Dead letters reach the trigger's dead-letter target, else the integration's.
Delivery failures of a target go to the dead-letter target its triggers share
(else the integration's); a dead-letter target's own delivery failures cannot
loop back into it, so those are counted and logged. Building is separate from
running: ``run``, ``test``, ``graph`` and ``template`` share it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.compiler import progress
from meshline.compiler.dofn import route_fn
from meshline.compiler.plan import StepPlan, TriggerPlan
from meshline.connectors.delivery import RetryPolicy
from meshline.errors import ConfigError
from meshline.events import CloudEvent
from meshline.registry import BuildContext
from meshline.spec.model import Integration
from meshline.spec.resolve import ResolvedComponent, ResolvedIntegration, resolve

__all__ = ["Built", "build_pipeline", "plan_triggers"]

_LOGGER = logging.getLogger(__name__)
# Runners whose checkpoints make a grouped stage durable before a source acknowledges.
_DURABLE = ("flink", "dataflow")


@dataclass
class Built:
    """What :func:`build_pipeline` added, for callers that inspect or extend it."""

    sources: dict[str, Any] = field(default_factory=dict)  # name -> events PCollection
    targets: dict[str, Any] = field(default_factory=dict)  # name -> input PCollection
    dead_letter_routes: dict[str, str | None] = field(default_factory=dict)  # target -> DL target


def plan_triggers(integration: Integration | ResolvedIntegration) -> dict[str, list[TriggerPlan]]:
    """Source name → the plans of the triggers that read it (in file order).

    Each step's plan carries its typed config (:mod:`meshline.spec.resolve`); a step
    whose config does not parse raises its :class:`ConfigError` here.
    """
    resolved = resolve(integration)
    model = resolved.integration
    steps = {t.name: t for t in resolved.transformations}
    plans: dict[str, list[TriggerPlan]] = {s.name: [] for s in model.sources}
    for trig in model.triggers:
        plan = TriggerPlan(
            name=trig.name,
            filters=tuple(trig.filters),
            steps=tuple(
                StepPlan(n, steps[n].type, steps[n].typed_config(), model.directory) for n in trig.steps
            ),
            target=trig.target,
            dead_letter=trig.delivery.dead_letter,
            filter_timeout=trig.filter_timeout,
        )
        for source in trig.sources:
            plans[source].append(plan)
    return plans


def _common(values: list[str | None], fallback: str | None) -> str | None:
    distinct = {v for v in values if v}
    if len(distinct) == 1 and None not in values:
        return distinct.pop()
    return fallback


class _CountFn(beam.DoFn):
    """Counts dead letters into Beam metrics once per bundle, passing them through.

    A target does not know which trigger sent an event; for its delivery failures
    ``triggers`` (the triggers that feed it) fills an empty ``meshlinetrigger``.
    """

    def __init__(self, names: tuple[str, ...], triggers: str = ""):
        self._names = names
        self._triggers = triggers

    def start_bundle(self):
        self._n = 0
        self._reported = 0
        self._next_report = time.monotonic() + 0.5

    def process(self, element: CloudEvent):
        self._n += 1
        if not self._n & 255 and time.monotonic() >= self._next_report:
            self._report()
        if self._triggers and not element.attributes.get("meshlinetrigger"):
            element = element.replace(meshlinetrigger=self._triggers)
        yield element

    def _report(self) -> None:
        """Dead letters so far, to the live progress line (Beam's counters get the total at bundle end)."""
        n, self._reported = self._n - self._reported, self._n
        self._next_report = time.monotonic() + 0.5
        if n:
            progress.add(dict.fromkeys(self._names, n))

    def finish_bundle(self):
        self._report()
        if self._n:
            for name in self._names:
                beam.metrics.Metrics.counter("meshline", name).inc(self._n)


class _DropFn(beam.DoFn):
    """The end of a failure path with no dead-letter target: count and log, not per event."""

    def __init__(self, what: str):
        self._what = what

    def start_bundle(self):
        self._n = 0
        self._last = ""

    def process(self, event: CloudEvent):
        self._n += 1
        self._last = event.attributes.get("meshlineerror", "")
        return ()

    def finish_bundle(self):
        if self._n:
            progress.add({"deadletter.dropped": self._n})
            beam.metrics.Metrics.counter("meshline", "deadletter.dropped").inc(self._n)
            _LOGGER.warning(
                "%d %s failure(s) in this bundle have no dead-letter target; last error: %s",
                self._n,
                self._what,
                self._last,
            )


def _build_component(
    kind: str,
    rc: ResolvedComponent,
    resolved: ResolvedIntegration,
    ctx_options: dict[str, Any],
    dead_letter: str | None = None,
) -> Any:
    """The component's transform, built from its typed config (never parsed again here)."""
    config = rc.typed_config()
    integration = resolved.integration
    ctx = BuildContext(
        integration=integration.name,
        name=rc.name,
        options=ctx_options,
        runner=ctx_options.get("runner", "direct"),
        delivery=_delivery_of(rc.name, integration) if kind == "target" else None,
        dead_letter=dead_letter,
        redelivering=kind == "target" and resolved.redelivering,
        directory=integration.directory,
    )
    transform = rc.component.build(config, ctx)
    pacing = ctx_options.get("pacing")
    pace = getattr(transform, "pace", None)
    if kind == "source" and pacing is not None and callable(pace):
        pace(pacing.fill_wait, pacing.fill_budget)  # spec.execution: a queue source's fill
    return transform


def _delivery_of(target: str, integration: Integration) -> RetryPolicy:
    """The most generous retry policy of the triggers that deliver to ``target``."""
    policies = [RetryPolicy.of(t.delivery) for t in integration.triggers if t.target == target]
    if not policies:
        return RetryPolicy()
    return max(policies, key=lambda p: (p.retries, p.max, p.delay))


def build_pipeline(
    integration: ResolvedIntegration | Integration,
    pipeline: beam.Pipeline,
    *,
    source_overrides: Mapping[str, beam.PTransform] | None = None,
    target_overrides: Mapping[str, beam.PTransform] | None = None,
    options: dict[str, Any] | None = None,
) -> Built:
    """Add the integration's transforms to ``pipeline``.

    ``integration`` is resolved (:func:`meshline.spec.resolve.resolve`; a plain
    :class:`~meshline.spec.model.Integration` is resolved here): every component is
    built from its typed config. ``source_overrides``/``target_overrides`` replace
    connectors by name (used by ``meshline test``); a source transform yields
    ``(events, dead_letters)`` and a target transform consumes events and yields dead
    letters.
    """
    source_overrides = source_overrides or {}
    target_overrides = target_overrides or {}
    options = options or {}
    built = Built()
    resolved = resolve(integration)
    model = resolved.integration
    plans = plan_triggers(resolved)
    default_dl = model.dead_letter
    inputs: dict[str, list[Any]] = {t.name: [] for t in model.targets}
    problems: list[str] = []
    batch_tags = frozenset(
        t.name for t in resolved.targets if t.name not in target_overrides and t.component.batches
    )

    for source in resolved.sources:
        decl = source.decl
        try:
            transform = source_overrides.get(decl.name) or _build_component(
                "source", source, resolved, options
            )
        except ConfigError as e:
            problems.append(str(e))
            continue
        events, decode_dead = pipeline | f"Source[{decl.name}]" >> transform
        built.sources[decl.name] = events
        triggers = plans[decl.name]
        decode_dl = default_dl or _common([t.dead_letter for t in triggers], None)
        _route_failures(
            decode_dead,
            decode_dl,
            inputs,
            f"DecodeFailures[{decl.name}]",
            (f"source.{decl.name}.decode_errors",),
            "decode",
        )
        tags = sorted({t.target for t in triggers} | {t.dead_letter for t in triggers if t.dead_letter})
        if not tags:
            continue
        # Typed outputs get Meshline's coder; untyped ones would get Beam's pickle fallback,
        # which also pickles each sampled EventBatch to estimate its size (B1: ~2% of CPU).
        typed = {tag: CloudEvent for tag in tags if tag != "self"}  # self: with_output_types' own
        routed = events | f"Route[{decl.name}]" >> beam.ParDo(
            route_fn(decl.name, triggers, model.name, batch_tags)
        ).with_output_types(CloudEvent, **typed).with_outputs(*tags)
        for tag in tags:
            inputs[tag].append(routed[tag])

    if problems:
        raise ConfigError("\n".join(problems))

    # Delivery failures of target T go to dl_of[T]; build targets so that T comes first.
    by_target: dict[str, list[str | None]] = {}
    for trig in model.triggers:
        by_target.setdefault(trig.target, []).append(trig.delivery.dead_letter)
    dl_of = {t.name: _common(by_target.get(t.name, []), default_dl) for t in model.targets}
    order = _target_order([t.name for t in model.targets], dl_of)
    targets = {t.name: t for t in resolved.targets}
    for name in order:
        pcolls = inputs[name]
        if not pcolls:
            continue
        dl = dl_of.get(name)
        if dl == name or (dl is not None and order.index(dl) < order.index(name)):
            dl = None  # would loop back into itself
        built.dead_letter_routes[name] = dl
        if len(pcolls) == 1 or name in target_overrides or options.get("runner") in _DURABLE:
            groups = [pcolls[0] if len(pcolls) == 1 else (pcolls | f"Merge[{name}]" >> beam.Flatten())]
        else:
            # One instance of the target per input instead of a Flatten: on the direct runner
            # and Prism a Flatten starts a new stage, so an acknowledging source would commit
            # (and acknowledge) before this target wrote. Without it the write is fused into
            # the source's bundle and happens before the acknowledgement.
            groups = list(pcolls)
        built.targets[name] = groups[0] if len(groups) == 1 else groups
        feeding = ",".join(t.name for t in model.triggers if t.target == name)
        for i, events in enumerate(groups):
            suffix = "" if i == 0 else f"#{i + 1}"
            transform = target_overrides.get(name) or _build_component(
                "target", targets[name], resolved, options, dead_letter=dl
            )
            dead = events | f"Target[{name}]{suffix}" >> transform
            if dead is not None:
                _route_failures(
                    dead,
                    dl,
                    inputs,
                    f"DeliveryFailures[{name}]{suffix}",
                    (f"target.{name}.dead_lettered",),
                    "delivery",
                    feeding,
                )
    return built


def _route_failures(
    dead: Any,
    dl: str | None,
    inputs: dict[str, list[Any]],
    label: str,
    counters: tuple[str, ...],
    what: str,
    triggers: str = "",
) -> None:
    if dl is None:
        dead | label >> beam.ParDo(_DropFn(what))
        return
    counted = dead | label >> beam.ParDo(
        _CountFn((*counters, f"target.{dl}.in"), triggers)
    ).with_output_types(CloudEvent)
    inputs[dl].append(counted)


def _target_order(names: list[str], dl_of: dict[str, str | None]) -> list[str]:
    """Targets whose failures feed a dead-letter target come before it (cycles are cut)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(n: str) -> None:
        if n in order or n in visiting:
            return
        visiting.add(n)
        for m in names:
            if dl_of.get(m) == n and m != n:
                visit(m)
        visiting.discard(n)
        order.append(n)

    for n in names:
        visit(n)
    return order
