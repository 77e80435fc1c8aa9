"""The plan layer of the router: what a trigger is, as plain data, and its steps built once.

The compiler's execution side is a stack of one-way layers; each module imports
only the ones below it (a test walks the imports and fails on a cycle)::

    dofn      RouteFn: the Beam DoFn of one source (bundles, metrics, windows)
      │
    router    Router: an event → the triggers that can match it → (tag, event) pairs
      │
    trigger   CompiledTrigger: a trigger's filters, and how its steps run
      │  ├── chain    run_steps: its steps one event at a time
      │  └── batched  BatchedChain: its steps with buffers for batched steps
      │
    plan      TriggerPlan / StepPlan (picklable data), Stage: one step, built

Below them all sit the transformations (:mod:`meshline.transforms`), reached
through public names only: :func:`~meshline.transforms.filters.compile_filters`,
:class:`~meshline.transforms.fused.FusedChain` and the step contract of
:mod:`meshline.transforms.results`.

:class:`TriggerPlan` and :class:`StepPlan` are what the build phase
(:func:`meshline.compiler.build.plan_triggers`) hands to each worker; every worker
then builds each step once (:func:`build_stages`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshline.config import parse_config
from meshline.registry import BuildContext, lookup
from meshline.transforms.filters import FilterStats
from meshline.transforms.limits import DEFAULT_TIMEOUT

__all__ = [
    "DROPPED",
    "Stage",
    "StepPlan",
    "TriggerCounts",
    "TriggerPlan",
    "build_stages",
    "has_batched_step",
]

DROPPED = "__meshline_dropped__"  # tag for failures with no dead-letter target (counted, not emitted)


@dataclass(frozen=True)
class StepPlan:
    """One step of a trigger: the transformation's name, type and parsed config dataclass
    (:mod:`meshline.spec.resolve`).

    A plan made by hand with the config's mapping (tests) has it parsed here, once,
    where the plan is made: the workers receive the dataclass, never a mapping.
    """

    name: str
    type: str
    config: Any
    directory: str | None = None  # the integration file's directory (BuildContext.directory)

    def __post_init__(self) -> None:
        if isinstance(self.config, Mapping):
            component = lookup("transformation", self.type)
            if component is None:
                raise ValueError(f"unknown transformation type {self.type!r}")
            parsed: Any = parse_config(
                component.config, dict(self.config), where=f"transformation {self.name}"
            )
            object.__setattr__(self, "config", parsed)


@dataclass(frozen=True)
class TriggerPlan:
    """A trigger as the router needs it: plain data, picklable."""

    name: str
    filters: tuple[dict[str, Any], ...]
    steps: tuple[StepPlan, ...]
    target: str
    dead_letter: str | None
    filter_timeout: float = DEFAULT_TIMEOUT  # seconds one jq filter may take on one event


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of a trigger, built: ``batch_size`` > 0 when its events are buffered for
    ``fn.batch`` (see :mod:`meshline.compiler.batched`)."""

    name: str
    type: str
    config: Any  # the parsed config (the component's dataclass)
    fn: Any  # fn(event) -> StepResult (meshline.transforms.results); batched: also fn.batch(events)
    counts: list[int]  # shared by every trigger with this step: [in, out, failed]
    batch_size: int


@dataclass(slots=True)
class TriggerCounts:
    """A trigger's counters since the last report (``Router.metrics`` takes and resets them)."""

    matched: int = 0
    out: int = 0
    filter_failed: int = 0
    transform_failed: int = 0
    # events its fused chain passed: each matched, went through every step and came out
    fused: int = 0
    stats: FilterStats = field(default_factory=FilterStats)

    def reset(self) -> None:
        self.matched = self.out = self.filter_failed = self.transform_failed = self.fused = 0
        self.stats = FilterStats()


def build_stages(
    steps: tuple[StepPlan, ...], integration: str, step_counts: dict[str, list[int]]
) -> tuple[Stage, ...]:
    """Each step's component looked up and its function built from its parsed config.

    ``step_counts`` (step name → ``[in, out, failed]``) is shared by every trigger of
    one router: a step used by two triggers counts once per event it sees.
    """
    stages = []
    for s in steps:
        component = lookup("transformation", s.type)
        if component is None:
            raise ValueError(f"unknown transformation type {s.type!r}")
        config = s.config
        ctx = BuildContext(integration=integration, name=s.name, directory=s.directory)
        fn = component.build(config, ctx)
        size = int(getattr(fn, "batch_size", 1)) if component.batched else 0
        counts = step_counts.setdefault(s.name, [0, 0, 0])
        stages.append(Stage(s.name, s.type, config, fn, counts, size if size > 1 else 0))
    return tuple(stages)


def has_batched_step(triggers: list[TriggerPlan]) -> bool:
    """Some trigger has a step whose component may batch (the DoFn must keep windows)."""
    for plan in triggers:
        for s in plan.steps:
            component = lookup("transformation", s.type)
            if component is not None and component.batched:
                return True
    return False
