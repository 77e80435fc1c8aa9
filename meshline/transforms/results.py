"""What a transformation step returns: the contract between steps and the compiler.

A step built by a transformation component is ``fn(event) -> StepResult``: one
event, a list of events (zero or more), or ``None`` (the event is dropped). A step
whose component is ``batched`` (``Component.batched``) and whose built object has
``batch_size > 1`` also has ``batch(events) -> BatchResult | list[StepResult |
BaseException]``: the compiler buffers that many events and hands them over at
once (see :mod:`meshline.compiler.batched`).

This module sits below both the transformations (``http``, ``python``) and the
compiler, so neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from meshline.events import CloudEvent

__all__ = ["STEP_FAILURES", "BatchResult", "StepResult"]

# What a step or filter may raise for one event: its failure, dead-lettered. SystemExit too
# (code that calls sys.exit()); KeyboardInterrupt is the run being stopped (Ctrl-C) and goes on.
STEP_FAILURES = (Exception, SystemExit)

StepResult = CloudEvent | list[CloudEvent] | None  # what a step returns for one event


class BatchResult(NamedTuple):
    """What a batched step's ``batch(events)`` returns (a plain list means ``results``, no ``extra``)."""

    # one per input event, in input order: a step result, or the exception that event failed with
    results: list[StepResult | BaseException]
    # events the batch produced as a whole (attributable to no input event)
    extra: Sequence[CloudEvent] = ()
