"""Steps that run in a child process, so that a call past its ``timeout`` can really be stopped.

User code (``python``) can sleep, block on a socket or loop in C; libxslt (``xslt``) can
recurse for long. None of that can be interrupted from Python, and while a C call holds
the GIL even Ctrl-C waits. :class:`IsolatedStep` runs the step in a
:class:`~meshline.transforms.sandbox.Child`: one per step and router (so per DoFn
instance), started when the step is built, so a ``function`` that cannot be imported
fails the run at start as before. The child keeps its module state across events, like
the step did in-process; it imports with the parent's ``sys.path`` and working directory,
after the directories the step names (a python step: its integration file's directory).

The step is ``batched`` (see :mod:`meshline.compiler.batched`): the router hands it
up to :data:`BATCH` events at once (fewer at the end of a bundle), sent to the child in
one message; the child replies event by event, and each event has its own deadline,
counted from the previous reply. A round trip to a process costs 40–80 µs here; with
a batch in flight the two processes work side by side, and a python step costs about
28 µs per event (1 KiB events; 8 µs in-process before): the JSON encoding both ways and
the child's own copy of each event. When an event passes its deadline the child is killed,
that event is dead-lettered ("timed out after N s"), and a new child takes the rest of
the batch (module state starts over). A child that dies (``os._exit``, a crash, out of
memory) dead-letters the event it was working on the same way. Any exception the code
raises, ``SystemExit`` and ``KeyboardInterrupt`` included, is that event's failure.
"""

from __future__ import annotations

import importlib
import pickle
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from meshline.errors import TransformError
from meshline.events import CloudEvent, from_json_dict
from meshline.secrets import reveal
from meshline.transforms.limits import seconds
from meshline.transforms.results import BatchResult, StepResult
from meshline.transforms.sandbox import Child, ChildDied, ChildTimeout, become_child

__all__ = ["BATCH", "IsolatedStep"]

#: Events handed to the child at once.
BATCH = 64


class IsolatedStep:
    """A step built by ``builder(config)`` (``"module:function"``) inside a child process.

    ``path``: directories the child puts first on its ``sys.path`` before it builds the
    step (a python step's integration file directory), after the parent's own path.
    """

    def __init__(
        self, builder: str, config: Any, what: str, timeout: float, path: Sequence[str] = ()
    ) -> None:
        # The child is a process of this one with no secret store: it gets the values, over a pipe.
        self._spec = (builder, reveal(config), tuple(path))
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
            request = _encode(rest)
            try:
                child.send_raw(request)
            except ChildDied:  # it ended between two batches: a new one takes them
                child = self._child = self._start()
                child.send_raw(request)
            try:
                for _ in rest:
                    results.append(_decode(child.recv_raw(self._timeout)))
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


def _step_main(conn: Any, spec: tuple[str, Any, tuple[str, ...]]) -> None:
    """The child: build the step, then answer each event with ``(ok, result or reason)``."""
    become_child()
    builder, config, path = spec
    for directory in reversed(path):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    try:
        module, _, name = builder.partition(":")
        fn = getattr(importlib.import_module(module), name)(config)
    except BaseException as e:
        conn.send_bytes(b"!" + _reason(e).encode("utf-8", "replace"))
        return
    conn.send_bytes(b"+")
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return
        for event in _decode_events(request):
            try:
                result = fn(event)
            except BaseException as e:  # SystemExit, KeyboardInterrupt … are this event's failure
                conn.send_bytes(b"!" + _reason(e).encode("utf-8", "replace"))
                continue
            try:
                conn.send_bytes(_encode_result(result))
            except Exception as e:
                conn.send_bytes(b"!" + f"result cannot be passed on: {_reason(e)}".encode("utf-8", "replace"))


# Events cross as their JSON form (orjson: a few µs for a 1 KiB event, a third of pickle's
# time), or as a pickle when JSON cannot hold them (integers beyond 64 bits).


def _encode(events: list[CloudEvent]) -> bytes:
    try:
        return b"j" + orjson.dumps([e.json_form() for e in events])
    except TypeError:
        return b"p" + pickle.dumps(events, pickle.HIGHEST_PROTOCOL)


def _decode_events(request: bytes) -> list[CloudEvent]:
    """The child's events: the parent sent events it had validated, as their JSON form."""
    if request[:1] == b"p":
        return pickle.loads(request[1:])  # type: ignore[no-any-return]
    events = []
    for form in orjson.loads(request[1:]):
        if "data_base64" in form:
            events.append(from_json_dict(form))
        else:  # (the form is this process's own: its dict becomes the attributes)
            data = form.pop("data", None)
            events.append(CloudEvent(form, data))
    return events


def _encode_result(result: Any) -> bytes:
    if result is None:
        return b"0"
    events = result if isinstance(result, list) else [result]
    try:
        return (b"j" if isinstance(result, list) else b"1") + orjson.dumps([e.json_form() for e in events])
    except TypeError:
        return b"p" + pickle.dumps(result, pickle.HIGHEST_PROTOCOL)


def _decode(reply: bytes) -> StepResult | BaseException:
    kind = reply[:1]
    if kind == b"0":
        return None
    if kind == b"!":
        return TransformError(reply[1:].decode("utf-8", "replace"))
    if kind == b"p":
        return pickle.loads(reply[1:])  # type: ignore[no-any-return]
    events = [from_json_dict(form) for form in orjson.loads(reply[1:])]
    return events[0] if kind == b"1" else events


def _reason(e: BaseException) -> str:
    if type(e).__module__.startswith("meshline"):
        return str(e) or type(e).__name__
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
