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
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["outstanding", "register", "wait"]

_LIVE: weakref.WeakSet[_Ack] = weakref.WeakSet()
_LOCK = threading.Lock()
_IDLE = threading.Condition(_LOCK)
_running = 0


class _Ack:
    __slots__ = ("__weakref__", "fn")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn

    def __call__(self) -> None:
        global _running
        with _LOCK:
            _LIVE.discard(self)
            _running += 1
        try:
            self.fn()
        finally:
            with _LOCK:
                _running -= 1
                _IDLE.notify_all()


def register(finalizer: Any, fn: Callable[[], Any]) -> None:
    """``finalizer.register(fn)`` (a ``beam.DoFn.BundleFinalizerParam``), counted until it runs."""
    ack = _Ack(fn)
    with _LOCK:
        _LIVE.add(ack)
    finalizer.register(ack)


def outstanding() -> int:
    """Callbacks registered and not yet run to their end (running ones included)."""
    with _LOCK:
        return len(_LIVE) + _running


def wait(timeout: float) -> int:
    """Wait up to ``timeout`` seconds for every outstanding callback to have run; how many have not."""
    deadline = time.monotonic() + timeout
    with _IDLE:
        while True:
            left = len(_LIVE) + _running
            remaining = deadline - time.monotonic()
            if left == 0 or remaining <= 0:
                return left
            _IDLE.wait(min(remaining, 0.1))
