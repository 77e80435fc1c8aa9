"""Limits every step shares: its ``timeout``, and what its output may hold.

``timeout`` (every transformation type; default :data:`DEFAULT_TIMEOUT`) is the longest
one call of the step may take for one event. Past it the step is stopped and the input
event dead-lettered (stage ``transform``, the reason says it timed out). How a step is
stopped depends on what runs it:

- ``jq``: native code checks the clock in its loops; programs on libjq run in a helper
  process that is killed (see :mod:`meshline.transforms.jq`);
- ``python`` and ``xslt``: the step runs in a child process that is killed and started
  again (:mod:`meshline.transforms.isolated`);
- ``http``: the timeout of each request (every retry gets its own);
- ``mapping`` and ``xml2json`` do work proportional to the event and cannot loop: a call
  that took longer than ``timeout`` is dead-lettered when it returns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from meshline.config import Duration, doc
from meshline.errors import TransformError

__all__ = ["DEFAULT_TIMEOUT", "nonfinite_path", "seconds", "timed", "timeout_field"]

#: Seconds. Generous next to what steps take (microseconds for jq and mapping, an HTTP
#: call's 30 s default), short enough that a stuck event is noticed within a minute.
DEFAULT_TIMEOUT = 30.0


def timeout_field() -> Any:
    return doc(
        "the longest the step may take on one event; past it the event is dead-lettered",
        Duration(DEFAULT_TIMEOUT),
    )


def seconds(timeout: float) -> str:
    """``1.0`` → ``"1s"``, ``0.25`` → ``"0.25s"``."""
    return f"{timeout:g}s"


def timed(fn: Callable[[Any], Any], what: str, timeout: float) -> Callable[[Any], Any]:
    """``fn`` whose calls that took longer than ``timeout`` fail when they return."""
    clock = time.monotonic

    def timed_step(event: Any) -> Any:
        start = clock()
        out = fn(event)
        took = clock() - start
        if took > timeout:
            raise TransformError(f"{what} took {took:.3g}s, longer than its timeout of {seconds(timeout)}")
        return out

    return timed_step


def nonfinite_path(value: Any, path: str = "") -> str | None:
    """Where ``value`` holds a NaN or an infinity (``data.a[2]``), or ``None``."""
    t = type(value)
    if t is float:
        return None if math.isfinite(value) else path or "."
    if t is dict:
        for k, v in value.items():
            found = nonfinite_path(v, f"{path}.{k}" if path else str(k))
            if found is not None:
                return found
    elif t is list or t is tuple:
        for i, v in enumerate(value):
            found = nonfinite_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    elif isinstance(value, float) and not math.isfinite(value):
        return path or "."
    return None
