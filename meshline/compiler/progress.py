"""Live progress on a terminal: every stage's counts, dead letters included, while a run goes on.

Workers of the in-process runners (direct, Prism and Flink ``[local]`` run their
Python workers inside the ``meshline`` process) add to process-wide totals, keyed
by the names of Meshline's Beam counters (``source.S.in``, ``trigger.T.matched``,
``step.X.failed``, ``target.T.in``, ``target.T.dead_lettered`` …): the router
at most twice a second (it reads the clock once per 256 events, so the hot path
stays an integer compare) and at the end of every bundle, the dead-letter
counters likewise. A daemon thread of the CLI redraws one status line on stderr
once a second when stderr is a terminal::

    [   12s] orders 120,000 in | big-orders 40,000 matched, 39,990 out | total 39,990 out
             | → big-orders 39,990, rejects 12 | dead-lettered 12

(on one line, cut to the terminal's width). Remote runners (Dataflow, a Flink
cluster) show their own UIs; there the line stays empty.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from meshline.spec.model import Integration

__all__ = ["Progress", "add", "render", "snapshot"]

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


def _dead_letters(totals: dict[str, int]) -> int:
    """Events that failed somewhere so far: decode, filter, step and delivery failures."""
    suffixes = (".decode_errors", ".filter_errors", ".transform_errors")
    n = sum(v for k, v in totals.items() if k.startswith(("source.", "trigger.")) and k.endswith(suffixes))
    n += sum(v for k, v in totals.items() if k.startswith("target.") and k.endswith(".dead_lettered"))
    return n


def render(integration: Integration, totals: dict[str, int]) -> str:
    """One line: every source, trigger, step and target of ``integration`` with its counts so far."""

    def g(name: str) -> int:
        return totals.get(name, 0)

    parts: list[str] = []
    for s in integration.sources:
        bad = g(f"source.{s.name}.decode_errors")
        parts.append(f"{s.name} {g(f'source.{s.name}.in') + bad:,} in" + (f" ({bad:,} bad)" if bad else ""))
    for trig in integration.triggers:
        p = f"trigger.{trig.name}."
        text = f"{trig.name} {g(p + 'matched'):,} matched, {g(p + 'out'):,} out"
        failed = g(p + "filter_errors") + g(p + "transform_errors")
        parts.append(text + (f", {failed:,} failed" if failed else ""))
    for st in integration.transformations:
        p = f"step.{st.name}."
        failed = g(p + "failed")
        parts.append(f"{st.name} {g(p + 'out'):,} out" + (f", {failed:,} failed" if failed else ""))
    targets = []
    for t in integration.targets:
        p = f"target.{t.name}."
        failed = g(p + "dead_lettered")
        targets.append(f"{t.name} {g(p + 'in'):,}" + (f" ({failed:,} undeliverable)" if failed else ""))
    if targets:
        parts.append("→ " + ", ".join(targets))
    dead = _dead_letters(totals)
    dropped = g("deadletter.dropped")
    parts.append(
        f"dead-lettered {dead:,}" + (f" ({dropped:,} with no dead-letter target)" if dropped else "")
    )
    return " | ".join(parts)


def _fallback(totals: dict[str, int]) -> str:
    return "  ".join(f"{k}: {v:,}" for k, v in sorted(totals.items()))


class Progress:
    """Context manager that redraws a status line while the block runs (terminals only).

    ``integration`` names the stages to show, in the file's order (else every counter
    reported, sorted); ``enabled=False`` keeps it quiet (``--log-format json``).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        interval: float = 1.0,
        integration: Integration | None = None,
        enabled: bool = True,
    ):
        self._stream = stream or sys.stderr
        self._interval = interval
        self._integration = integration
        self._enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def __enter__(self) -> Progress:
        with _LOCK:
            _TOTALS.clear()
        if self._enabled and self._stream.isatty():
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

    def line(self) -> str | None:
        """The status line now (``None`` before anything was counted)."""
        totals = snapshot()
        if not totals:
            return None
        body = render(self._integration, totals) if self._integration is not None else _fallback(totals)
        return f"[{time.monotonic() - self._started:5.0f}s] {body}"

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            line = self.line()
            if line is None:
                continue
            width = max(20, shutil.get_terminal_size((120, 24)).columns - 1)
            self._stream.write("\r\033[K" + (line if len(line) <= width else line[: width - 1] + "…"))
            self._stream.flush()
