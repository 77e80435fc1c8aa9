"""A trigger compiled for the router: :class:`CompiledTrigger`, made by :func:`compile_trigger`.

One object serves every execution path; which one a trigger takes is decided
here, once per worker:

- fused: all its filters are ``jq`` filters and all its steps ``.data``-only ``jq``
  steps: :class:`~meshline.transforms.fused.FusedChain` runs them in one call
  (``fused``); when it cannot say, the one-by-one path below runs instead;
- one by one: ``pred`` (its filters but an indexed first ``exact``) then
  ``run_steps`` (:func:`meshline.compiler.chain.run_steps`);
- batched: some step batches: ``run_steps`` hands the event to its
  :class:`~meshline.compiler.batched.BatchedChain` (``batched``), which delivers to
  the router's outbox.

Everything on a :class:`CompiledTrigger` is fixed once built except its counters
(``counts``, reset in place by the router's ``metrics()``) and the step counts
on its stages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from meshline.compiler.batched import BatchedChain, Outbox
from meshline.compiler.chain import run_steps
from meshline.compiler.plan import DROPPED, Stage, TriggerCounts, TriggerPlan, build_stages
from meshline.events import CloudEvent
from meshline.transforms.filters import Predicate, compile_filters, exact_index_key
from meshline.transforms.fused import FusedChain

__all__ = ["CompiledTrigger", "compile_trigger"]


@dataclass(frozen=True, slots=True)
class CompiledTrigger:
    """A trigger as the router runs it (see the module docstring for its three paths)."""

    name: str
    target: str
    dead: str  # the tag of its dead letters: its dead-letter target, or DROPPED
    index: tuple[str, str] | None  # (attribute, value) of a first exact filter the router indexes
    pred: Predicate | None  # its other filters; None: every event matches
    run_steps: Callable[[CloudEvent], list[CloudEvent]] | None  # None: no steps, the event is the output
    stages: tuple[Stage, ...]
    fused: FusedChain | None = None
    batched: BatchedChain | None = None
    counts: TriggerCounts = field(default_factory=TriggerCounts)


def compile_trigger(
    plan: TriggerPlan,
    integration: str,
    step_counts: dict[str, list[int]],
    outbox: Outbox,
    fuse: bool = True,
) -> CompiledTrigger:
    """Build ``plan``'s steps and filters; ``outbox`` takes a batched trigger's outputs.

    ``fuse=False`` keeps a trigger that could be fused on the one-by-one path (tests
    compare the two).
    """
    index = exact_index_key(plan.filters)
    rest = plan.filters[1:] if index else plan.filters
    stages = build_stages(plan.steps, integration, step_counts)
    dead = plan.dead_letter or DROPPED
    counts = TriggerCounts()
    pred = compile_filters(rest, plan.filter_timeout)
    if any(st.batch_size for st in stages):
        batched = BatchedChain(plan.name, stages, plan.target, dead, counts, outbox)
        return CompiledTrigger(
            plan.name, plan.target, dead, index, pred, batched.enter, stages, batched=batched, counts=counts
        )
    fused = FusedChain.of(rest, [(st.type, st.config) for st in stages]) if fuse else None
    return CompiledTrigger(
        plan.name, plan.target, dead, index, pred, run_steps(stages), stages, fused=fused, counts=counts
    )
