"""What a running integration shows while it runs: taps, the last dead letters, delivery latency, backlog.

The direct runner, Prism and Flink ``[local]`` run their Python SDK workers inside the
``meshline`` process (loopback), so the workers can hand what they see to this module
and the CLI's metrics endpoint, live page and ``meshline tap`` read it here, without
a round trip through the runner. On a remote runner (a Flink cluster, Dataflow) none
of this is filled; the runner's own metrics carry Meshline's counters there.

Everything is off until :func:`enable` (``--metrics-port``, ``--ui``, ``meshline tap``),
and what the workers do per event stays off until it is asked for:

- **taps** (:func:`open_tap`): the router offers the events passing a tapped stage
  (``source.S``, ``trigger.T``, ``step.X``, ``target.T``) while :data:`TAPPING` is set;
  a tap keeps a bounded sample (at most ``rate`` events a second), so a tap on a
  busy stage costs a dict lookup per event and a copy per sampled one;
- **dead letters** (:func:`record_dead_letter`): every dead letter made in this process
  (:func:`meshline.events.dead_letter` calls it), the last :data:`DEAD_LETTERS` kept;
- **latency** (:func:`stamp`, :func:`bundle_done`): the router notes each routed event's
  timestamp (the source's time: webhook arrival, Kafka record time, SQS sent time …);
  when the bundle that carried it is done (its targets stored what they were given,
  before the runner commits and the source acknowledges) the age of each event is
  observed in a histogram per target — minus the events the target dead-lettered in
  that bundle;
- **backlog** (:func:`add_backlog`): sources register a function reporting what waits
  in their system (Kafka consumer lag per partition, queue depths), read at scrape time.

Event text reaching a tap or the dead-letter panel has every secret value this process
knows masked (:func:`meshline.secrets.mask`), and the data fields named by ``--mask``
replaced by ``***``.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # meshline.events calls record_dead_letter: no import of it at run time
    from meshline.events import CloudEvent

__all__ = [
    "BUCKETS",
    "DEAD_LETTERS",
    "Tap",
    "add_backlog",
    "backlog",
    "bundle_done",
    "close_tap",
    "dead_letters",
    "enable",
    "event_json",
    "latency",
    "offer",
    "open_tap",
    "record_dead_letter",
    "reset",
    "set_masks",
    "stamp",
]

#: Set by :func:`enable` before a pipeline is built: the compiler then makes routers that stamp.
ENABLED = False
#: Some tap is open: routers offer events to :func:`offer` (read once per routed element).
TAPPING = False
#: Changes whenever a tap opens or closes: routers then look again at what is tapped.
TAP_VERSION = 0
DEAD_LETTERS = 50  # the last dead letters kept for the live page
#: Upper bounds (seconds) of the delivery-latency histogram's buckets (``+Inf`` is implied).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: Element timestamps before this (microseconds since the epoch: 2000-01-01) are not a
#: source's time (bounded files carry Beam's minimum timestamp): no latency for them.
_EARLIEST_MICROS = 946_684_800 * 1_000_000

_LOCK = threading.Lock()
_MASKS: tuple[tuple[str, ...], ...] = ()


def enable(on: bool = True) -> None:
    """Turn the in-process observation on (before the pipeline is built)."""
    global ENABLED
    ENABLED = on


def set_masks(paths: Iterable[str]) -> None:
    """Data fields to show as ``***`` (``data.card.number`` or ``card.number``: a path in ``data``)."""
    global _MASKS
    out = []
    for p in paths:
        parts = [x for x in p.strip().split(".") if x]
        if parts and parts[0] == "data":
            parts = parts[1:]
        if parts:
            out.append(tuple(parts))
    _MASKS = tuple(out)


def reset() -> None:
    """Forget latency, dead letters and taps' samples (a new run)."""
    with _LOCK:
        _LATENCY.clear()
        _DEAD.clear()
        _DEAD_TOTAL[0] = 0


# --------------------------------------------------------------------------- event text


def _masked(value: Any, path: tuple[str, ...]) -> Any:
    if not path or not isinstance(value, dict) or path[0] not in value:
        return value
    copy = dict(value)
    copy[path[0]] = "***" if len(path) == 1 else _masked(value[path[0]], path[1:])
    return copy


def event_json(event: CloudEvent) -> dict[str, Any]:
    """The event in the CloudEvents JSON format, masked: what a tap or the page may show."""
    from meshline.secrets import mask

    form = dict(event.json_form())
    if _MASKS and isinstance(form.get("data"), dict):
        data = form["data"]
        for path in _MASKS:
            data = _masked(data, path)
        form["data"] = data
    try:
        text = orjson.dumps(form, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = orjson.dumps({k: str(v) for k, v in form.items()}).decode()
    masked = mask(text)
    if masked is text:
        return form
    parsed: dict[str, Any] = orjson.loads(masked)
    return parsed


# --------------------------------------------------------------------------- taps


@dataclass(eq=False)
class Tap:
    """A sample of the events passing ``stage``: at most ``rate`` a second, the last ``keep`` kept."""

    stage: str
    rate: int = 20
    keep: int = 200
    events: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    taken: int = 0  # events sampled since the tap opened
    seen: int = 0  # events offered since the tap opened
    _window: float = 0.0
    _in_window: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def _offer(self, events: list[CloudEvent], now: float) -> None:
        self.seen += len(events)
        if now - self._window >= 1.0:
            self._window, self._in_window = now, 0
        room = self.rate - self._in_window
        if room <= 0:
            return
        chosen = events[:room]
        self._in_window += len(chosen)
        sampled = []
        for e in chosen:
            try:
                sampled.append(event_json(e))
            except Exception:  # an event that cannot be shown is not the tap's failure
                continue
        with self._cond:
            for s in sampled:
                self.events.append(s)
                if len(self.events) > self.keep:
                    self.events.popleft()
            self.taken += len(sampled)
            self._cond.notify_all()

    def take(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """The sampled events not taken yet (waits up to ``timeout`` seconds for one)."""
        with self._cond:
            if not self.events and timeout:
                self._cond.wait(timeout)
            out = list(self.events)
            self.events.clear()
            return out


_TAPS: dict[str, list[Tap]] = {}


def open_tap(stage: str, rate: int = 20, keep: int = 200) -> Tap:
    """Start sampling ``stage`` (``source.S``, ``trigger.T``, ``step.X``, ``target.T``)."""
    global TAPPING, TAP_VERSION
    tap = Tap(stage, rate=max(1, rate), keep=max(1, keep))
    with _LOCK:
        _TAPS.setdefault(stage, []).append(tap)
        TAPPING = True
        TAP_VERSION += 1
    return tap


def close_tap(tap: Tap) -> None:
    global TAPPING, TAP_VERSION
    with _LOCK:
        taps = _TAPS.get(tap.stage, [])
        if tap in taps:
            taps.remove(tap)
        if not taps:
            _TAPS.pop(tap.stage, None)
        TAPPING = bool(_TAPS)
        TAP_VERSION += 1


def tapped(stage: str) -> bool:
    return stage in _TAPS


def offer(stage: str, events: list[CloudEvent]) -> None:
    """Events passing ``stage``; sampled by every tap open on it (cheap when none is)."""
    taps = _TAPS.get(stage)
    if not taps or not events:
        return
    now = time.monotonic()
    for tap in list(taps):
        tap._offer(events, now)


# --------------------------------------------------------------------------- dead letters

_DEAD: collections.deque[dict[str, Any]] = collections.deque(maxlen=DEAD_LETTERS)
_DEAD_TOTAL = [0]


def record_dead_letter(event: CloudEvent) -> None:
    """A dead letter made in this process (a no-op until :func:`enable`)."""
    if not ENABLED:
        return
    a = event.attributes
    try:
        shown = event_json(event)
    except Exception:
        shown = {"id": str(a.get("id", ""))}
    entry = {
        "time": time.time(),
        "stage": a.get("meshlineerrorstage", ""),
        "trigger": a.get("meshlinetrigger", ""),
        "step": a.get("meshlinestep", ""),
        "reason": shown.get("meshlineerror", ""),
        "id": shown.get("id", ""),
        "event": shown,
    }
    with _LOCK:
        _DEAD_TOTAL[0] += 1
        entry["n"] = _DEAD_TOTAL[0]
        _DEAD.append(entry)


def dead_letters(after: int = 0) -> list[dict[str, Any]]:
    """The dead letters kept whose number is above ``after``, oldest first."""
    with _LOCK:
        return [d for d in _DEAD if d["n"] > after]


# --------------------------------------------------------------------------- latency


class _Histogram:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float, n: int) -> None:
        i = 0
        for bound in BUCKETS:
            if seconds <= bound:
                break
            i += 1
        self.buckets[i] += n
        self.count += n
        self.sum += seconds * n


_LATENCY: dict[str, _Histogram] = {}
_PENDING = threading.local()


def stamp(target: str, micros: int, n: int) -> None:
    """``n`` events with element timestamp ``micros`` were handed to ``target`` in this thread's bundle."""
    if micros < _EARLIEST_MICROS:
        return
    pending = getattr(_PENDING, "stamps", None)
    if pending is None:
        pending = _PENDING.stamps = []
    pending.append((target, micros, n))


def bundle_done(counters: dict[str, int] | None) -> None:
    """This thread's bundle is done: observe its stamped events' ages (``counters``: the bundle's
    own); ``None``: it failed, and what it stamped was not delivered (the runner retries it)."""
    pending = getattr(_PENDING, "stamps", None)
    if not pending:
        return
    _PENDING.stamps = []
    if counters is None:
        return
    now = time.time() * 1e6
    by_target: dict[str, list[tuple[int, int]]] = {}
    for target, micros, n in pending:
        by_target.setdefault(target, []).append((micros, n))
    with _LOCK:
        for target, stamps in by_target.items():
            # Events the target dead-lettered were not stored there: leave out as many (the newest).
            skip = counters.get(f"target.{target}.dead_lettered", 0)
            h = _LATENCY.get(target)
            if h is None:
                h = _LATENCY[target] = _Histogram()
            for micros, n in sorted(stamps):
                if skip:
                    dropped = min(skip, n)
                    skip -= dropped
                    n -= dropped
                if n > 0:
                    h.observe(max(0.0, (now - micros) / 1e6), n)


def latency() -> dict[str, tuple[list[int], int, float]]:
    """Per target: (bucket counts, not cumulative, ``+Inf`` last), count, sum of seconds."""
    with _LOCK:
        return {t: (list(h.buckets), h.count, h.sum) for t, h in _LATENCY.items()}


# --------------------------------------------------------------------------- backlog

#: name -> fn() giving ``(labels, value)`` rows; a source registers one per run.
_BACKLOG: dict[str, Callable[[], list[tuple[dict[str, str], float]]]] = {}


def add_backlog(name: str, fn: Callable[[], list[tuple[dict[str, str], float]]]) -> None:
    """Register what waits in a source's system (read when metrics are scraped)."""
    with _LOCK:
        _BACKLOG[name] = fn


def backlog() -> list[tuple[dict[str, str], float]]:
    """Every registered source's backlog rows; a source that cannot say now gives none."""
    with _LOCK:
        fns = list(_BACKLOG.values())
    rows: list[tuple[dict[str, str], float]] = []
    for fn in fns:
        try:
            rows.extend(fn())
        except Exception:  # a scrape never fails because one system did not answer
            continue
    return rows
