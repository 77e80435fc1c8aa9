"""Deadlines for compiled jq code: loops count ticks, one tick in ``TICK_EVERY`` reads the clock."""

from __future__ import annotations

import itertools
import threading
import time

from meshline.transforms.jqc.errors import JqTimeout

# ----------------------------------------------------------------------------- deadlines

# Every loop of the compiled closures (each output through a pipe, a reduction, a recursion
# ...) counts one tick: ``if not next_tick() & MASK: check_deadline()``, inline (a call
# would cost more than the count). One tick in TICK_EVERY reads the clock and compares it
# with the calling thread's deadline. Straight-line programs (pygen) have no loop and
# never tick.
TICK_EVERY = 1024  # a power of two
MASK = TICK_EVERY - 1
next_tick = itertools.count(1).__next__
deadlines = threading.local()  # .at: the calling thread's deadline (time.monotonic()), or None


def tick() -> None:
    if not next_tick() & MASK:
        check_deadline()


def check_deadline() -> None:
    """Raise :class:`JqTimeout` when the calling thread's deadline has passed."""
    at = getattr(deadlines, "at", None)
    if at is not None and time.monotonic() > at:
        raise JqTimeout()


class deadline:
    """Within the block, compiled code of this thread raises :class:`JqTimeout` after ``timeout`` s."""

    __slots__ = ("_saved", "_timeout")

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    def __enter__(self) -> None:
        self._saved = getattr(deadlines, "at", None)
        deadlines.at = time.monotonic() + self._timeout

    def __exit__(self, *exc: object) -> None:
        deadlines.at = self._saved
