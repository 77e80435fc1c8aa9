"""A source never emits an element behind the watermark it has already reported.

Such an element is *late*: a window downstream (the file and object targets' ``commit:
window``, chosen on Flink and Dataflow) may have fired already, and the runner drops late
elements there without a word — after the source acknowledged them. Measured before this
guard: a Kafka → file run on a Flink cluster wrote 38 of 40 records; the two lost ones were
fetched after an empty fetch had moved the partition's watermark to the wall clock.
"""

from __future__ import annotations

from typing import Any

from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.timestamp import Timestamp

from meshline.connectors.queues import Message
from meshline.connectors.unbounded import _QueueReadFn, _Restriction
from meshline.events import CloudEvent
from tests.unit.test_idle_source import Finalizer, View, _give, _kafka_fn, _Log, _no_clients_left  # noqa: F401 (autouse)

NOW = 1_800_000_000.0


class _Queue:
    def __init__(self, messages: list[Message]) -> None:
        self.due = messages

    def pull(self, max_messages: int, timeout: float) -> list[Message]:
        out, self.due = self.due[:max_messages], self.due[max_messages:]
        return out

    def ack(self, ack_ids: list[str]) -> None:
        pass

    def close(self) -> None:
        pass


def _event(n: int) -> CloudEvent:
    return CloudEvent({"specversion": "1.0", "id": str(n), "source": "s", "type": "t"}, None)


def test_a_queue_message_older_than_the_watermark_leaves_at_the_watermark() -> None:
    reported = Timestamp.of(NOW - 10)
    messages = [
        Message("old", _event(1), NOW - 3600),  # a backlog, or a redelivery, an hour behind
        Message("new", _event(2), NOW - 5),
        Message("bad", _event(3), NOW - 7200, error="cannot decode"),  # its dead letter too
    ]
    fn = _QueueReadFn(lambda: _Queue(messages), None, batch=10, poll=0.01, source_name="q")
    fn.setup()
    estimator = ManualWatermarkEstimator(reported)
    out = list(fn.process(None, finalizer=Finalizer(), tracker=View(_Restriction()), watermark=estimator))
    stamps = [(o.value if isinstance(o, TaggedOutput) else o).timestamp for o in out]
    assert stamps == [reported, Timestamp.of(NOW - 5), reported]
    assert all(s >= reported for s in stamps)
    assert estimator.current_watermark() == Timestamp.of(NOW - 5)  # never moved back


class _Estimator:
    def __init__(self, at: Timestamp | None) -> None:
        self.at = at

    def current_watermark(self) -> Timestamp | None:
        return self.at

    def set_watermark(self, ts: Timestamp) -> None:
        assert self.at is None or ts >= self.at
        self.at = ts


def _kafka(log: Any) -> Any:
    from meshline.connectors.kafka import read

    fn = _kafka_fn(lambda: lambda m: [(_event(m.offset()), None)], 100, 0.01)
    _give(fn, 0, log)

    class Tracker(read._OffsetTracker):
        def defer_remainder(self, delay: Any = None) -> None:
            pass

    return fn, Tracker


def test_kafka_records_older_than_the_partitions_watermark_leave_at_the_watermark() -> None:
    from meshline.connectors.kafka import read

    log = _Log(4)  # records stamped 1_700_000_000_000 + offset ms: long before the watermark
    fn, Tracker = _kafka(log)
    reported = Timestamp.of(1_700_000_000.002)
    out = list(fn.process(("t", 0), Finalizer(), Tracker(read._Offsets(0, False, 1.0)), _Estimator(reported)))
    stamps = [wv.timestamp for wv in out]
    assert stamps and all(s >= reported for s in stamps)
    assert stamps[-1] == Timestamp.of(1_700_000_000.003)  # a record after the watermark keeps its time
    events = [e for wv in out for e in getattr(wv.value, "events", [wv.value])]
    assert sorted(int(e.id) for e in events) == [0, 1, 2, 3]  # nothing dropped on the way


class _Unfetched(_Log):
    """A partition whose client has no fetch response yet (or one saying records wait)."""

    def __init__(self, n: int, high: int) -> None:
        super().__init__(n)
        self.high = high

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def get_watermark_offsets(self, tp: Any, timeout: float = 0, cached: bool = False) -> tuple[int, int]:
        return -1001, self.high


def test_an_empty_fetch_moves_kafkas_watermark_to_the_clock_only_at_the_partitions_end() -> None:
    from meshline.connectors.kafka import read

    for high, moves in ((-1001, False), (40, False), (0, True)):
        fn, Tracker = _kafka(_Unfetched(0, high))
        estimator = _Estimator(None)
        list(fn.process(("t", 0), Finalizer(), Tracker(read._Offsets(0, False, 1.0)), estimator))
        assert (estimator.at is not None) is moves, high
