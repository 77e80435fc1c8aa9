"""Live progress on a terminal: events in / out per source and trigger while a run goes on.

Workers of the in-process runner add to process-wide totals every few thousand
events (not per event: the hot path stays a local increment); a daemon thread
of the CLI redraws one status line on stderr once a second when stderr is a
terminal. Remote runners (Flink, Dataflow) show their own UIs; there this is idle.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

__all__ = ["Progress", "add", "snapshot"]

_LOCK = threading.Lock()
_TOTALS: dict[str, int] = {}


def add(deltas: dict[str, int]) -> None:
    with _LOCK:
        for k, v in deltas.items():
            if v:
                _TOTALS[k] = _TOTALS.get(k, 0) + v


def snapshot() -> dict[str, int]:
    with _LOCK:
        return dict(_TOTALS)


class Progress:
    """Context manager that redraws a status line while the block runs (terminals only)."""

    def __init__(self, stream: TextIO | None = None, interval: float = 1.0):
        self._stream = stream or sys.stderr
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def __enter__(self) -> Progress:
        with _LOCK:
            _TOTALS.clear()
        if self._stream.isatty():
            self._started = time.monotonic()
            self._thread = threading.Thread(target=self._loop, name="meshline-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._stream.write("\r\033[K")
            self._stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            totals = snapshot()
            if not totals:
                continue
            parts = [f"{k.replace('.', ' ', 1)}: {v:,}" for k, v in sorted(totals.items())]
            line = f"[{time.monotonic() - self._started:5.0f}s] " + "  ".join(parts)
            self._stream.write("\r\033[K" + line[:200])
            self._stream.flush()
