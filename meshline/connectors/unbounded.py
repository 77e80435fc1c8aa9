"""The unbounded source pattern every acknowledging connector uses.

A connector supplies a :class:`~meshline.connectors.queues.QueueReader` (pull a batch,
acknowledge ids);
:class:`ReadFromQueue` turns it into a splittable DoFn that

- pulls batches and emits one event per message, timestamped with the
  message's publish time, advancing a manual watermark;
- acknowledges a bundle's messages only in Beam's **bundle finalizer**, i.e.
  after the runner has durably committed the bundle that consumed them (Prism,
  Flink after a checkpoint, Dataflow). A bundle that fails is never
  acknowledged, so the queue redelivers its messages: at least once.
  Finalizers may run more than once; acknowledging twice is harmless for every
  queue Meshline reads (ack ids are idempotent);
- ends cleanly at ``max_events`` (the restriction's limit) or after
  ``idle_timeout`` without a message, having acknowledged what it delivered;
  otherwise it checkpoints (``ProcessContinuation.resume``) and goes on forever;
- idles cheaply: each bundle of an idle source waits in its pull, and that wait grows with
  the time the source has been idle (:func:`idle_wait`: ``poll`` at first, up to
  :data:`IDLE_WAIT_MAX`), so an idle stream runs a bundle every few seconds rather than
  several a second. A pull returns as soon as a message arrives, so the growing wait adds
  no latency; the first message resets it to ``poll``. The bundle then resumes at once (a
  resume delay only makes up for a pull that returned before half its wait).

Messages a connector cannot turn into events are emitted on the ``dead`` tag
(stage ``decode``) — and acknowledged like the rest, because they reached the
dead-letter target in the same bundle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.iobase import RestrictionProgress, RestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import WindowedValue

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline import observe
from meshline.connectors import acks
from meshline.connectors.queues import Message, QueueReader
from meshline.events import CloudEvent, dead_letter

__all__ = ["IDLE_WAIT_MAX", "Message", "QueueReader", "ReadFromQueue", "idle_wait", "watermark_floor"]

_LOGGER = logging.getLogger(__name__)

#: The windows of every record a source reads (it runs in the global window: Impulse →
#: Reshuffle). Sources output ``WindowedValue(event, ts, GLOBAL_WINDOWS)``: a
#: ``TimestampedValue`` would make Beam call ``GlobalWindows.assign`` per record, which
#: builds a ``GlobalWindow`` each time (~8% of a Kafka pipeline's CPU, py-spy).
GLOBAL_WINDOWS = (GlobalWindow(),)
DEAD = "dead"
# Defaults of spec.execution's fillWait and fillBudget (meshline.runners.pacing):
FILL_WAIT = 0.1  # seconds a pull waits for more once a bundle has emitted
FILL_BUDGET = 0.5  # seconds a bundle may spend filling up after its first message
IDLE_WAIT_MAX = 5.0  # seconds: the longest pull of an idle source (one bundle per this, idle)
IDLE_WAIT_GROWTH = 0.25  # an idle source's pull waits this fraction of the time it has been idle


# --------------------------------------------------------------------------- restriction


@dataclass(frozen=True)
class _Restriction:
    """``claimed`` messages so far of at most ``limit`` (None: unbounded); ``done`` when ended.

    ``active_at`` (wall-clock seconds) is when a message last arrived; it travels
    with checkpoints so ``idle_timeout`` counts across resumptions.
    """

    claimed: int = 0
    limit: int | None = None
    done: bool = False
    active_at: float = 0.0


# The DoFn only sees try_claim(): try_claim(_STOP) ends the restriction and
# try_claim((_SEEN, t)) records activity at time t without claiming a message.
_STOP = "stop"
_SEEN = "seen"


class _Tracker(RestrictionTracker):
    def __init__(self, restriction: _Restriction):
        self._r = restriction

    def current_restriction(self) -> _Restriction:
        return self._r

    def try_claim(self, position: Any = None) -> bool:
        r = self._r
        if position == _STOP:
            self._r = _Restriction(r.claimed, r.limit, True, r.active_at)
            return False
        if type(position) is tuple and position[0] == _SEEN:
            self._r = _Restriction(r.claimed, r.limit, r.done, position[1])
            return not r.done
        if r.done or (r.limit is not None and r.claimed >= r.limit):
            return False
        self._r = _Restriction(r.claimed + 1, r.limit, False, r.active_at)
        return True

    def try_split(self, fraction_of_remainder: float):
        r = self._r
        if r.done or fraction_of_remainder != 0:
            return None  # a queue has no offsets to divide; only checkpoints are possible
        if r.limit is not None and r.claimed >= r.limit:
            return None
        primary = _Restriction(r.claimed, r.limit, True, r.active_at)
        residual = _Restriction(r.claimed, r.limit, False, r.active_at)
        self._r = primary
        return primary, residual

    def check_done(self) -> None:
        return None  # every state is a consistent end: unread messages stay in the queue

    def current_progress(self) -> RestrictionProgress:
        r = self._r
        remaining = 0 if r.done else (r.limit - r.claimed if r.limit is not None else 1)
        return RestrictionProgress(completed=r.claimed, remaining=remaining)

    def is_bounded(self) -> bool:
        return self._r.done or self._r.limit is not None


class _Provider(RestrictionProvider):
    """The element is the ``max_events`` limit (or None), so one provider serves every source."""

    def initial_restriction(self, element: Any) -> _Restriction:
        return _Restriction(0, element, False)

    def create_tracker(self, restriction: _Restriction) -> _Tracker:
        return _Tracker(restriction)

    def restriction_size(self, element: Any, restriction: _Restriction) -> int:
        if restriction.done:
            return 0
        return (restriction.limit - restriction.claimed) if restriction.limit is not None else 1


_TRACKER = beam.DoFn.RestrictionParam(_Provider())
_WATERMARK = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())


# --------------------------------------------------------------------------- the DoFn


def idle_wait(poll: float, idle_for: float, idle_timeout: float | None = None) -> float:
    """How long the first pull of a bundle waits, the source having been idle ``idle_for`` seconds.

    ``poll`` while messages flow; then a quarter of the idle time so far, up to
    :data:`IDLE_WAIT_MAX` (never less than ``poll``): every idle bundle costs the runner and
    the SDK worker a round of scheduling, progress reports and finalization, and a long
    pull does not delay a message, since a pull returns as soon as one arrives. A grown
    wait never reaches past ``idle_timeout``, so the source still ends on time; ``poll``
    is always waited (the time a slow bundle took counts as idle, yet the next messages
    may be on their way).
    """
    wait = max(poll, min(IDLE_WAIT_MAX, idle_for * IDLE_WAIT_GROWTH))
    if idle_timeout is not None:
        wait = min(wait, max(poll, idle_timeout - idle_for))
    return wait


BACKLOG_EVERY_S = 5.0  # a queue's depth is asked at most this often, however often metrics are scraped


def _cached_backlog(source: str, ask: Callable[[], list[tuple[dict[str, str], float]]]) -> Any:
    last: list[Any] = [0.0, []]

    def rows() -> list[tuple[dict[str, str], float]]:
        now = time.monotonic()
        if now - last[0] >= BACKLOG_EVERY_S:
            last[0] = now
            last[1] = [({**labels, "source": source}, v) for labels, v in ask()]
        return list(last[1])

    return rows


class _QueueReadFn(beam.DoFn):
    def __init__(
        self,
        make_reader: Callable[[], QueueReader],
        idle_timeout: float | None,
        batch: int,
        poll: float,
        source_name: str,
    ):
        self._make_reader = make_reader
        self._idle = idle_timeout
        self._batch = batch
        self._poll = poll
        self._name = source_name
        self.fill_wait = FILL_WAIT
        self.fill_budget = FILL_BUDGET

    def setup(self):
        self._reader = self._make_reader()
        self._acked = beam.metrics.Metrics.counter("meshline", f"source.{self._name}.acknowledged")
        backlog = getattr(self._reader, "backlog", None)
        if observe.ENABLED and callable(backlog):  # --metrics-port / --ui: the queue's depth
            observe.add_backlog(f"queue:{self._name}", _cached_backlog(self._name, backlog))

    def teardown(self):
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()

    def _ack(self, ack_ids: list[str]) -> None:
        self._reader.ack(ack_ids)
        self._acked.inc(len(ack_ids))

    def process(
        self,
        limit: Any,
        finalizer=beam.DoFn.BundleFinalizerParam,  # must precede the restriction parameters
        tracker=_TRACKER,
        watermark=_WATERMARK,
    ):
        if not tracker.current_restriction().active_at:
            tracker.try_claim((_SEEN, time.time()))
        seek = getattr(self._reader, "seek", None)
        if seek is not None:
            seek(tracker.current_restriction().claimed)
        ack_ids: list[str] = []
        floor = watermark_floor(watermark)
        fill_until = 0.0  # once this bundle has emitted: how long it may wait to fill up
        idle_until = 0.0  # when this bundle's first pull was to end, had nothing arrived
        try:
            while len(ack_ids) < self._batch:
                r = tracker.current_restriction()
                want = self._batch - len(ack_ids)
                if r.limit is not None:
                    want = min(want, r.limit - r.claimed)
                if want <= 0:
                    return  # max_events reached: the restriction is complete
                # Once this bundle has emitted it waits only briefly for more (fill_wait per pull,
                # fill_budget in all): fewer, fuller bundles mean fewer objects, commits and
                # acknowledgement calls, for at most fill_budget of extra latency.
                if ack_ids:
                    wait = self.fill_wait if time.monotonic() < fill_until else 0.0
                else:
                    wait = idle_wait(self._poll, time.time() - r.active_at, self._idle)
                    idle_until = time.monotonic() + wait
                messages = self._reader.pull(want, wait)
                if not messages:
                    idle = time.time() - tracker.current_restriction().active_at
                    if self._idle is not None and idle >= self._idle:
                        tracker.try_claim(_STOP)  # idle_timeout: end cleanly
                        return
                    if not ack_ids:
                        _advance(watermark, Timestamp.now() - Duration(seconds=1))
                    break
                tracker.try_claim((_SEEN, time.time()))
                if not ack_ids:
                    fill_until = time.monotonic() + self.fill_budget
                for m in messages:
                    if not tracker.try_claim(None):
                        return  # over the limit: the rest is not acknowledged and will be redelivered
                    ack_ids.append(m.ack_id)
                    ts = Timestamp.of(m.timestamp)
                    if floor is not None and ts < floor:
                        ts = floor  # never behind the watermark already reported: see watermark_floor
                    if m.error is None:
                        yield WindowedValue(m.event, ts, GLOBAL_WINDOWS)
                    else:
                        bad = dead_letter(m.event, m.error, "decode", step=self._name)
                        yield beam.pvalue.TaggedOutput(DEAD, WindowedValue(bad, ts, GLOBAL_WINDOWS))
                    _advance(watermark, ts)
            # A checkpoint: the runner commits this bundle (then acknowledges) and resumes us at
            # once; or, when the pull returned empty-handed before half its wait (a reader that
            # does not wait), when the wait would have ended, so an idle source never spins.
            rest = 0.0 if ack_ids else idle_until - time.monotonic()
            tracker.defer_remainder(Duration(seconds=rest if rest > wait / 2 else 0.0))
        except BaseException:
            ack_ids = []  # a failed bundle is never acknowledged: the queue redelivers it
            raise
        finally:
            if ack_ids:
                ids = list(ack_ids)
                acks.register(finalizer, lambda: self._ack(ids))
            else:
                # Nothing to acknowledge; Prism still asks to finalize every bundle of this stage,
                # and a bundle without a callback is already released by then: the SDK worker
                # printed a "not in a finalizable state" traceback per idle poll.
                finalizer.register(nothing)


def nothing() -> None:
    """The finalizer callback of a bundle with nothing to acknowledge."""
    return None


def watermark_floor(watermark: Any) -> Timestamp | None:
    """The watermark this restriction reported before this bundle: no element may be older.

    An element behind the watermark is *late*: a window downstream (the object and file
    targets' ``commit: window`` on Flink and Dataflow) may have fired already, and the
    runner drops it there, silently — after the source has acknowledged it. A message that
    comes after the watermark moved on (a pull came back empty while the queue held a
    backlog, a publish time far behind, a redelivery) leaves stamped with that watermark
    instead: its data and ``time`` are unchanged; only its window is the later one.
    """
    return watermark.current_watermark()


def _advance(watermark: Any, ts: Timestamp) -> None:
    current = watermark.current_watermark()
    if current is None or ts > current:
        watermark.set_watermark(ts)


class ReadFromQueue(beam.PTransform):
    """``PBegin`` → ``(events, dead_letters)`` from a :class:`QueueReader`."""

    def __init__(
        self,
        make_reader: Callable[[], QueueReader],
        *,
        source_name: str,
        max_events: int | None = None,
        idle_timeout: float | None = None,
        batch: int = 100,
        poll: float = 1.0,
    ):
        super().__init__()
        self._fn = _QueueReadFn(make_reader, idle_timeout, batch, poll, source_name)
        self._limit = max_events

    def pace(self, fill_wait: float, fill_budget: float) -> None:
        """``spec.execution``'s fillWait and fillBudget (seconds), set by the compiler."""
        self._fn.fill_wait = fill_wait
        self._fn.fill_budget = fill_budget

    def expand(self, pbegin):
        limit = self._limit
        out = (
            pbegin
            | "Impulse" >> beam.Impulse()
            | "Limit" >> beam.Map(lambda _: limit)
            | "Read" >> beam.ParDo(self._fn).with_outputs(DEAD, main="events").with_output_types(CloudEvent)
        )
        return out.events, out[DEAD]
