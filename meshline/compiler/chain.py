"""A trigger's steps run one event at a time (the layer above :mod:`meshline.compiler.plan`).

:func:`run_steps` turns a trigger's built stages into ``fn(event) -> outputs``: each
step sees every event the previous one produced; a step that raises, or returns
anything but events, makes :class:`StepFailed` naming the step, and the caller
dead-letters the trigger's input event. Step counts (``[in, out, failed]``) are kept
on the stages as they run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from meshline.compiler.plan import Stage
from meshline.events import CloudEvent
from meshline.transforms.results import STEP_FAILURES

__all__ = ["StepFailed", "run_steps"]


class StepFailed(Exception):
    """A step failed on an event: ``step`` names it, ``error`` is what it raised."""

    def __init__(self, step: str, error: BaseException):
        super().__init__(step)
        self.step = step
        self.error = error


def run_steps(stages: Sequence[Stage]) -> Callable[[CloudEvent], list[CloudEvent]] | None:
    """Unbatched steps → ``fn(event) -> outputs`` (``None`` without steps); raises :class:`StepFailed`."""
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
                    raise StepFailed(name, exc) from None
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
                raise StepFailed(name, TypeError(f"step returned {type(x).__name__}"))
        return r
    counts[2] += 1
    raise StepFailed(name, TypeError(f"step returned {type(r).__name__}"))
