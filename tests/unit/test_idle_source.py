"""An idle queue source waits longer and longer in its pull, and snaps back when a message comes.

The DoFn of :class:`~meshline.connectors.unbounded.ReadFromQueue` runs here bundle by bundle
on a fake clock, with a fake reader that records how long each pull was asked to wait.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator

from meshline.connectors import unbounded
from meshline.connectors.queues import Message
from meshline.connectors.unbounded import IDLE_WAIT_MAX, _QueueReadFn, _Restriction, _Tracker, idle_wait
from meshline.events import CloudEvent


class Clock:
    """Stands in for the ``time`` module the DoFn reads; only a pull moves it forward."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


class Reader:
    """A queue whose pulls wait their whole timeout unless a message is due; records each timeout."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.timeouts: list[float] = []
        self.due: list[Message] = []
        self.acked: list[str] = []

    def pull(self, max_messages: int, timeout: float) -> list[Message]:
        self.timeouts.append(timeout)
        if self.due:
            out, self.due = self.due[:max_messages], self.due[max_messages:]
            return out
        self.clock.now += timeout
        return []

    def ack(self, ack_ids: list[str]) -> None:
        self.acked += ack_ids

    def close(self) -> None:
        pass


class View:
    """What Beam hands ``process()`` as its tracker: the restriction tracker plus defer_remainder."""

    def __init__(self, restriction: _Restriction) -> None:
        self.tracker = _Tracker(restriction)
        self.deferred: float | None = None

    def current_restriction(self) -> _Restriction:
        return self.tracker.current_restriction()

    def try_claim(self, position: Any = None) -> bool:
        return self.tracker.try_claim(position)

    def defer_remainder(self, delay: Any) -> None:
        self.deferred = delay.micros / 1e6


class Finalizer:
    def __init__(self) -> None:
        self.callbacks: list[Any] = []

    def register(self, fn: Any) -> None:
        self.callbacks.append(fn)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(unbounded, "time", fake)
    return fake


def _fn(reader: Reader, poll: float = 0.2, idle_timeout: float | None = None) -> _QueueReadFn:
    fn = _QueueReadFn(lambda: reader, idle_timeout, batch=10, poll=poll, source_name="q")
    fn.setup()
    return fn


def _bundle(fn: _QueueReadFn, restriction: _Restriction) -> tuple[list[Any], View, Finalizer]:
    """One bundle: its outputs, the tracker (restriction, resume delay) and the finalizer."""
    view, finalizer = View(restriction), Finalizer()
    out = list(fn.process(None, finalizer=finalizer, tracker=view, watermark=ManualWatermarkEstimator(None)))
    return out, view, finalizer


def _message(n: int, clock: Clock) -> Message:
    event = CloudEvent({"specversion": "1.0", "id": str(n), "source": "s", "type": "t"}, None)
    return Message(str(n), event, clock.now)


def test_an_idle_source_waits_longer_each_bundle_and_resets_when_a_message_comes(clock: Clock) -> None:
    reader = Reader(clock)
    fn = _fn(reader)
    restriction = _Restriction()
    delays = []
    for _ in range(30):
        out, view, finalizer = _bundle(fn, restriction)
        assert out == [] and len(finalizer.callbacks) == 1
        delays.append(view.deferred)
        restriction = view.tracker.try_split(0)[1]  # the residual the runner resumes
    waits = list(reader.timeouts)
    assert waits[0] == 0.2  # at first, the configured poll
    assert all(b >= a for a, b in itertools.pairwise(waits))  # never shorter while idle
    assert waits[-1] == IDLE_WAIT_MAX > waits[0]  # grown, up to the cap
    assert delays == [0.0] * 30  # each pull waited its time: resume at once

    reader.due = [_message(1, clock)]
    out, view, finalizer = _bundle(fn, restriction)
    assert [v.value.id for v in out] == ["1"]
    assert reader.timeouts[30] == IDLE_WAIT_MAX  # the message ended this long pull (it returns at once)
    assert view.deferred == 0.0
    finalizer.callbacks[0]()
    assert reader.acked == ["1"]

    restriction = view.tracker.try_split(0)[1]
    reader.timeouts.clear()
    _bundle(fn, restriction)
    assert reader.timeouts[0] == 0.2  # a message came: back to the short poll


def test_a_pull_that_returns_early_is_made_up_by_the_resume_delay(clock: Clock) -> None:
    class Impatient(Reader):
        def pull(self, max_messages: int, timeout: float) -> list[Message]:
            self.timeouts.append(timeout)
            return []  # a reader that does not wait: the runner must not spin on it

    reader = Impatient(clock)
    fn = _fn(reader, poll=1.0)
    _, view, _ = _bundle(fn, _Restriction(active_at=clock.now - 100))
    assert reader.timeouts == [IDLE_WAIT_MAX]
    assert view.deferred == IDLE_WAIT_MAX


def test_a_pull_that_waited_most_of_its_time_resumes_at_once(clock: Clock) -> None:
    class Emulator(Reader):  # the Pub/Sub emulator answers an empty pull a little early
        def pull(self, max_messages: int, timeout: float) -> list[Message]:
            self.timeouts.append(timeout)
            self.clock.now += 0.8 * timeout
            return []

    reader = Emulator(clock)
    _, view, _ = _bundle(_fn(reader, poll=1.0), _Restriction(active_at=clock.now - 100))
    assert reader.timeouts == [IDLE_WAIT_MAX]
    assert view.deferred == 0.0  # a message arriving now would otherwise wait out the rest


def test_the_wait_never_passes_idle_timeout(clock: Clock) -> None:
    reader = Reader(clock)
    fn = _fn(reader, poll=0.2, idle_timeout=30.0)
    restriction = _Restriction()
    for _ in range(100):
        _, view, _ = _bundle(fn, restriction)
        if view.current_restriction().done:
            break
        restriction = view.tracker.try_split(0)[1]
    assert view.current_restriction().done  # ended by idle_timeout
    assert 30.0 <= clock.now - 1_000_000.0 <= 30.2  # on time: at most a poll late, not a long pull


@pytest.mark.parametrize(
    ("idle_for", "expected"),
    [(0.0, 0.2), (1.0, 0.25), (8.0, 2.0), (60.0, IDLE_WAIT_MAX), (3600.0, IDLE_WAIT_MAX)],
)
def test_idle_wait_grows_with_the_idle_time_up_to_the_cap(idle_for: float, expected: float) -> None:
    assert idle_wait(0.2, idle_for) == pytest.approx(expected)


def test_idle_wait_never_shorter_than_poll_nor_grown_past_idle_timeout() -> None:
    assert idle_wait(10.0, 3600.0) == 10.0  # a configured poll above the cap is kept
    assert idle_wait(0.2, 100.0, idle_timeout=101.0) == pytest.approx(1.0)
    assert idle_wait(0.2, 100.0, idle_timeout=90.0) == 0.2  # past it (a slow bundle): poll, once more


class _Partition:
    """A Kafka client of one partition with nothing buffered; ``high``: its cached end offset."""

    def __init__(self, high: int) -> None:
        self.high = high
        self.consumed = 0

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        self.consumed += 1
        return []

    def get_watermark_offsets(self, tp: Any, cached: bool = False) -> tuple[int, int]:
        assert cached  # no request to the broker while waiting
        return 0, self.high


def _kafka_fn(make_decoder: Any = lambda: None, batch: int = 10, poll: float = 1.0) -> Any:
    """A Kafka partition reader DoFn, set up, with no client yet (tests give it theirs: :func:`_give`)."""
    from meshline.connectors.kafka import read

    fn = read._ReadPartitionFn(
        {},
        make_decoder,
        start="earliest",
        start_millis=None,
        max_events=None,
        idle_timeout=None,
        batch=batch,
        poll=poll,
        source_name="k",
    )
    fn.setup()
    return fn


@pytest.fixture(autouse=True)
def _no_clients_left() -> Any:
    """The process-wide Kafka clients the tests below made are gone after each."""
    from meshline.connectors.kafka import read

    before = set(read._CLIENTS)
    yield
    for key in set(read._CLIENTS) - before:
        del read._CLIENTS[key]


def _give(fn: Any, partition: int, consumer: Any, position: int | None = None) -> None:
    """``consumer`` is this process's client of partition ``("t", partition)`` of ``fn``'s source."""
    from meshline.connectors.kafka import read

    read._CLIENTS[(fn._token, "t", partition)] = read._Client(consumer, position)


def test_a_waiting_kafka_partition_gives_way_to_another_with_records() -> None:
    """One bundle reads its partitions one after the other: a record on another partition this
    worker reads ends the wait at once, instead of waiting out this partition's long fetch."""
    fn = _kafka_fn()
    waiting, other = _Partition(high=5), _Partition(high=9)
    _give(fn, 0, waiting, 5)
    _give(fn, 1, other, 7)  # partition 1 has records 7 and 8 unread
    assert fn._wait_first(waiting, "t", 0, 3600.0) == []
    assert waiting.consumed == 1


def test_a_waiting_kafka_partition_keeps_waiting_while_the_others_are_read_up() -> None:
    fn = _kafka_fn()
    waiting, other = _Partition(high=5), _Partition(high=7)
    _give(fn, 0, waiting, 5)
    _give(fn, 1, other, 7)
    assert fn._wait_first(waiting, "t", 0, 0.05) == []
    assert waiting.consumed > 1  # looked again and again until its wait was over


class _Record:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000 + self._offset)


class _Log:
    """One partition's client over records 0..n-1; ``checkpoint`` runs inside the first consume
    that returns records (a runner's checkpoint arriving while the bundle waits in its fetch)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pos = 0
        self.assigned: list[int] = []
        self.checkpoint: Any = None

    def assign(self, tps: list[Any]) -> None:
        self.pos = tps[0].offset
        self.assigned.append(self.pos)

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        out = [_Record(o) for o in range(self.pos, min(self.n, self.pos + num_messages))]
        if out and self.checkpoint is not None:
            self.checkpoint()
            self.checkpoint = None
        self.pos += len(out)
        return out

    def get_watermark_offsets(self, tp: Any, timeout: float = 0, cached: bool = False) -> tuple[int, int]:
        return 0, self.n


def test_a_batch_fetched_when_the_runner_checkpointed_is_read_again_by_the_residual() -> None:
    """A checkpoint (try_split(0)) that lands while a bundle fetches leaves the fetched batch
    to the residual: the client handed it out already, so the residual's read seeks back."""
    from meshline.connectors.kafka import read
    from meshline.events import CloudEvent

    class Finalizer:
        def register(self, fn: Any) -> None:
            pass

    class Watermark:
        def current_watermark(self) -> None:
            return None

        def set_watermark(self, ts: Any) -> None:
            pass

    fn = _kafka_fn(
        lambda: lambda m: [(CloudEvent({"id": str(m.offset()), "source": "/k", "type": "t"}), None)],
        100,
        0.01,
    )

    class View(read._OffsetTracker):  # what the SDK hands process(): the tracker, deferrable
        def defer_remainder(self, delay: Any = None) -> None:
            pass

    log = _Log(10)
    _give(fn, 0, log)
    tracker = View(read._Offsets(0, False, 1.0))
    split: list[Any] = []
    log.checkpoint = lambda: split.append(tracker.try_split(0))
    first = list(fn.process(("t", 0), Finalizer(), tracker, Watermark()))
    residual = View(split[0][1])
    second = list(fn.process(("t", 0), Finalizer(), residual, Watermark()))

    def ids(outputs: list[Any]) -> list[int]:
        events = [e for wv in outputs for e in getattr(wv.value, "events", [wv.value])]
        return [int(e.id) for e in events]

    assert ids(first) + ids(second) == list(range(10))


def test_the_instances_of_one_kafka_source_share_one_client_per_partition() -> None:
    """The SDK makes a DoFn instance whenever its cached ones are busy (on Flink, each bundle that
    awaits its checkpoint holds one). A consumer per instance kept fetching what that instance
    would never read; now the process has one per partition, closed with its last holder."""
    import copy

    made: list[Any] = []

    class Consumer:
        closed = False

        def close(self) -> None:
            self.closed = True

    first = _kafka_fn()
    second = copy.deepcopy(first)  # another instance of the same source, as the SDK unpickles
    second.setup()
    for fn in (first, second):
        fn._new_consumer = lambda: made.append(Consumer()) or made[-1]
    assert first._client("t", 0) is second._client("t", 0)
    first._client("t", 1)
    assert len(made) == 2
    first.teardown()
    assert [c.closed for c in made] == [False, True]  # partition 1 had no other holder
    second.teardown()
    assert [c.closed for c in made] == [True, True]
    other_source = _kafka_fn()  # another source (another token) has its own clients
    other_source._new_consumer = lambda: made.append(Consumer()) or made[-1]
    other_source._client("t", 0)
    assert len(made) == 3
    other_source.teardown()
