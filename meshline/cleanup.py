"""What an interrupted run must undo before the process ends.

``meshline run`` ends an interrupted run with ``os._exit`` (see :mod:`meshline.cli`): no
``atexit`` handler, ``finally`` block or DoFn ``teardown`` runs, so anything a worker had
half done stays as it was. A worker registers such work here while it is in progress —
the file target registers the hidden temporary file of each object it is filling — and
withdraws it once done; :func:`interrupted` (called by the CLI's signal path, after the
job was cancelled) runs what is still registered, once, and from then on refuses new
registrations, so a bundle still running cannot start another.

What is undone was not committed: the bundle that was filling it never finished, so an
acknowledging source has not acknowledged its events and will deliver them again.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable

__all__ = ["Interrupted", "interrupted", "is_interrupted", "register", "reset", "unregister"]

_LOGGER = logging.getLogger(__name__)
_LOCK = threading.Lock()
_PENDING: dict[int, Callable[[], None]] = {}
_IDS = itertools.count(1)
_STOPPED = threading.Event()


class Interrupted(RuntimeError):
    """The run is being interrupted: no new work may start."""


def register(undo: Callable[[], None]) -> int:
    """Remember ``undo`` until :func:`unregister`; raise :class:`Interrupted` once the run is stopping."""
    with _LOCK:
        if _STOPPED.is_set():
            raise Interrupted("the run is being interrupted")
        token = next(_IDS)
        _PENDING[token] = undo
        return token


def unregister(token: int) -> None:
    with _LOCK:
        _PENDING.pop(token, None)


def is_interrupted() -> bool:
    return _STOPPED.is_set()


def interrupted() -> int:
    """Run every registered undo once (errors are logged at debug level); the number that ran."""
    with _LOCK:
        _STOPPED.set()
        pending = list(_PENDING.values())
        _PENDING.clear()
    for undo in pending:
        try:
            undo()
        except Exception as e:  # the process is ending: do what can be done
            _LOGGER.debug("cleanup after an interrupt failed: %s", e)
    return len(pending)


def reset() -> None:
    """Forget everything and accept registrations again (a new run in the same process: tests)."""
    with _LOCK:
        _PENDING.clear()
        _STOPPED.clear()
