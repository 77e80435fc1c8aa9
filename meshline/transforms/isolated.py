"""Steps that run in a child process, so that a call past its ``timeout`` can really be stopped.

User code (``python``) can sleep, block on a socket or loop in C; libxslt (``xslt``) can
recurse for long. None of that can be interrupted from Python, and while a C call holds
the GIL even Ctrl-C waits. :class:`IsolatedStep` runs the step in a
:class:`~meshline.transforms.sandbox.Child`: one per step and router (so per DoFn
instance), started when the step is built, so a ``function`` that cannot be imported
fails the run at start as before. The child keeps its module state across events, like
the step did in-process.

The step is ``batched`` (see :mod:`meshline.compiler.router_batch`): the router hands it
up to :data:`BATCH` events at once (fewer at the end of a bundle), sent to the child in
one message; the child replies event by event, and each event has its own deadline,
counted from the previous reply. A round trip to a process costs 40–80 µs here, a batch
spreads it to a few µs per event. When an event passes its deadline the child is killed,
that event is dead-lettered ("timed out after N s"), and a new child takes the rest of
the batch (module state starts over). A child that dies (``os._exit``, a crash, out of
memory) dead-letters the event it was working on the same way. Any exception the code
raises, ``SystemExit`` and ``KeyboardInterrupt`` included, is that event's failure.
"""

from __future__ import annotations

import importlib
from typing import Any

from meshline.compiler.router_batch import BatchResult, StepResult
from meshline.errors import TransformError
from meshline.events import CloudEvent
from meshline.transforms.limits import seconds
from meshline.transforms.sandbox import Child, ChildDied, ChildTimeout, become_child, reply, requests

__all__ = ["BATCH", "IsolatedStep"]

#: Events handed to the child at once.
BATCH = 64


class IsolatedStep:
    """A step built by ``builder(config)`` (``"module:function"``) inside a child process."""

    def __init__(self, builder: str, config: Any, what: str, timeout: float) -> None:
        self._spec = (builder, config)
        self._what = what  # "python step": how reasons name the step
        self._timeout = float(timeout)
        self.batch_size = BATCH
        self._child: Child | None = None
        self._child = self._start()

    def _start(self) -> Child:
        child = Child(_step_main, self._spec)
        child.start(TransformError)
        return child

    def __call__(self, event: CloudEvent) -> StepResult:
        (r,) = self.batch([event]).results
        if isinstance(r, BaseException):
            raise r
        return r

    def batch(self, events: list[CloudEvent]) -> BatchResult:
        """One result per event, in order; a stuck or crashed event fails alone."""
        results: list[StepResult | BaseException] = []
        while len(results) < len(events):
            child = self._child
            if child is None or not child.alive:
                child = self._child = self._start()
            rest = events[len(results) :]
            try:
                child.send(rest)
            except ChildDied:  # it ended between two batches: a new one takes them
                child = self._child = self._start()
                child.send(rest)
            try:
                for _ in rest:
                    ok, value = child.recv(self._timeout)
                    results.append(value if ok else TransformError(value))
            except ChildTimeout:
                results.append(
                    TransformError(
                        f"{self._what} timed out after {seconds(self._timeout)} (its process was stopped)"
                    )
                )
            except ChildDied as e:
                results.append(TransformError(f"{self._what} failed: {e}"))
        return BatchResult(results)

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.close()


def _step_main(conn: Any, spec: tuple[str, Any]) -> None:
    """The child: build the step, then answer each event with ``(ok, result or reason)``."""
    become_child()
    builder, config = spec
    try:
        module, _, name = builder.partition(":")
        fn = getattr(importlib.import_module(module), name)(config)
    except BaseException as e:
        conn.send_bytes(b"!" + _reason(e).encode("utf-8", "replace"))
        return
    conn.send_bytes(b"+")
    for events in requests(conn):
        for event in events:
            try:
                out: tuple[bool, Any] = (True, fn(event))
            except BaseException as e:  # SystemExit, KeyboardInterrupt … are this event's failure
                out = (False, _reason(e))
            try:
                reply(conn, out)
            except Exception as e:
                reply(conn, (False, f"result cannot be passed on: {_reason(e)}"))


def _reason(e: BaseException) -> str:
    if type(e).__module__.startswith("meshline"):
        return str(e) or type(e).__name__
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
