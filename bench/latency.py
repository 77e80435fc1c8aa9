"""The pure side of B9 and the soak: paced send times, percentiles, latency rows, process trees.

- :func:`schedule` gives an open-loop sender its send times: event ``i`` is due at
  ``start + i / rate`` whatever happened to the events before it (a sender that waited
  for each answer would slow down exactly when the system under test does, and hide it);
- :func:`percentile` is the nearest-rank percentile (the smallest value with at least
  ``q`` % of the values at or below it: always one of the measured values);
- :func:`tree`, :func:`cpu_seconds` and :func:`rss_mib` read ``/proc``: a run's
  processes are the CLI and everything below it (Prism or the Flink JVM, SDK workers).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LatencyRow",
    "cpu_seconds",
    "latency_markdown",
    "latency_table",
    "loadavg",
    "percentile",
    "rss_mib",
    "schedule",
    "summary",
    "tree",
]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def schedule(rate: float, count: int, start: float = 0.0) -> Iterator[float]:
    """Send times of ``count`` events at ``rate`` events/s from ``start`` (open loop)."""
    if rate <= 0:
        raise ValueError(f"rate: must be more than 0, got {rate}")
    for i in range(count):
        yield start + i / rate


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of ``values`` (NaN when there are none)."""
    if not 0 < q <= 100:
        raise ValueError(f"q: must be in (0, 100], got {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    """p50, p95 and p99 of ``values``."""
    ordered = sorted(values)
    return percentile(ordered, 50), percentile(ordered, 95), percentile(ordered, 99)


@dataclass
class LatencyRow:
    """One B9 point: latencies in seconds (delivery: sent → at the target; ack: sent → committed)."""

    shape: str
    runner: str
    rate: float
    events: int  # measured events (warm-up excluded)
    delivery: tuple[float, float, float]
    ack: tuple[float, float, float]
    load: str  # /proc/loadavg's three averages at the end of the point
    notes: list[str] = field(default_factory=list)


def _ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:,.0f}"


def latency_table(rows: Iterable[LatencyRow]) -> str:
    head = (
        f"{'shape':<16} {'runner':<14} {'ev/s':>5} {'events':>7} "
        f"{'deliv p50/p95/p99 ms':>22} {'ack p50/p95/p99 ms':>22}  load avg"
    )
    lines = [head]
    for r in rows:
        d = "/".join(_ms(x) for x in r.delivery)
        a = "/".join(_ms(x) for x in r.ack)
        lines.append(f"{r.shape:<16} {r.runner:<14} {r.rate:>5.0f} {r.events:>7,} {d:>22} {a:>22}  {r.load}")
    return "\n".join(lines)


def latency_markdown(rows: Iterable[LatencyRow]) -> str:
    lines = [
        "| shape | runner | events/s | events | delivery p50 ms | p95 | p99 "
        "| ack p50 ms | p95 | p99 | load average |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        d, a = (_ms(x) for x in r.delivery), (_ms(x) for x in r.ack)
        lines.append(
            f"| {r.shape} | {r.runner} | {r.rate:.0f} | {r.events:,} | {' | '.join(d)} | {' | '.join(a)} "
            f"| {r.load} |"
        )
    return "\n".join(lines)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # the fields after "pid (comm)", comm may hold spaces


def tree(root: int) -> list[int]:
    """``root`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return [p for p in out if _stat(p) is not None]


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """utime + stime of each live process of ``pids``, in seconds."""
    out = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            out[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def rss_mib(pids: Iterable[int]) -> dict[int, float]:
    """The resident set of each live process of ``pids``, in MiB."""
    out = {}
    for pid in pids:
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out[pid] = pages * _PAGE / 2**20
    return out


def name(pid: int) -> str:
    """The process's command name (``prism``, ``java``, ``python3.11``…), or ``?``."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"
