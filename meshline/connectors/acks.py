"""Acknowledgements a source has registered with a bundle and the runner has not asked for yet.

A source acknowledges (commits an offset, deletes a message, answers 202) in Beam's bundle
finalizer, which the runner calls after it has committed the bundle — on Flink after the
checkpoint that covers it. The runner's request arrives asynchronously: at the end of a
drained Flink run the job is already FINISHED while the SDK worker (in this process,
``LOOPBACK``) still receives and runs the last bundles' callbacks. :func:`wait` lets the
CLI wait for those before it exits, instead of cutting a commit short; what never comes
is redelivered (at least once), and the CLI says so.

A callback counts as outstanding from :func:`register` until it has run; the SDK drops a
failed bundle's callbacks, and with them the count (a weak set).

An acknowledgement that is a *position* (a Kafka offset: committing one covers every lower
one of its partition) is registered with ``position=(key, rank)``. Positions of one key run
one at a time, and one at or below a position already acknowledged does not run: Flink
asks for several bundles' acknowledgements at once, each DoFn instance has its own client,
and a broker keeps whichever commit arrives last.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["outstanding", "register", "wait"]

_LIVE: weakref.WeakSet[_Ack] = weakref.WeakSet()
_LOCK = threading.Lock()
_IDLE = threading.Condition(_LOCK)
_running = 0
_DONE: dict[Hashable, int] = {}  # key -> highest position acknowledged
_ORDER: dict[Hashable, threading.Lock] = {}  # key -> held while one of its positions runs


class _Ack:
    __slots__ = ("__weakref__", "fn", "key", "rank")

    def __init__(self, fn: Callable[[], Any], key: Hashable = None, rank: int = 0) -> None:
        self.fn = fn
        self.key = key
        self.rank = rank

    def covered(self) -> bool:
        """A position at or below one already acknowledged (call with the lock held)."""
        return self.key is not None and _DONE.get(self.key, -1) >= self.rank

    def __call__(self) -> None:
        global _running
        with _LOCK:
            _LIVE.discard(self)
            _running += 1
            order = None if self.key is None else _ORDER.setdefault(self.key, threading.Lock())
        try:
            if order is None:
                self.fn()
                return
            # Positions of one key run one at a time and never backwards: the runner may ask for
            # two bundles' acknowledgements at once, from different DoFn instances, and a
            # broker keeps the commit that arrives last.
            with order:
                with _LOCK:
                    if self.covered():
                        return
                self.fn()
                with _LOCK:
                    _DONE[self.key] = self.rank
        finally:
            with _LOCK:
                _running -= 1
                _IDLE.notify_all()


def register(finalizer: Any, fn: Callable[[], Any], *, position: tuple[Hashable, int] | None = None) -> None:
    """``finalizer.register(fn)`` (a ``beam.DoFn.BundleFinalizerParam``), counted until it runs.

    ``position=(key, rank)``: ``fn`` acknowledges everything of ``key`` below ``rank`` (see the
    module's text).
    """
    ack = _Ack(fn) if position is None else _Ack(fn, position[0], position[1])
    with _LOCK:
        _LIVE.add(ack)
    finalizer.register(ack)


def _left() -> int:
    return sum(1 for a in _LIVE if not a.covered()) + _running


def outstanding() -> int:
    """Callbacks registered and not yet run to their end (running ones included); a position
    counts until it, or a higher one of its key, has run."""
    with _LOCK:
        return _left()


def wait(timeout: float) -> int:
    """Wait up to ``timeout`` seconds for every outstanding callback to have run; how many have not."""
    deadline = time.monotonic() + timeout
    with _IDLE:
        while True:
            left = _left()
            remaining = deadline - time.monotonic()
            if left == 0 or remaining <= 0:
                return left
            _IDLE.wait(min(remaining, 0.1))
