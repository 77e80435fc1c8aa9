"""The Kafka read core: one splittable-DoFn restriction per topic partition.

``Impulse → discover partitions → Reshuffle → SDF`` — the element is
``(topic, partition)``, so Flink and Dataflow spread partitions over workers.
The restriction is an offset range ``[next, ∞)`` that ends when the source ends
(``max_events``, ``idle_timeout``); a checkpoint (``defer_remainder``) splits it
into the read part and the rest, after every ``batch`` records.

An idle partition waits in its fetch, longer the longer it has been idle
(:func:`~meshline.connectors.unbounded.idle_wait`, shared among the partitions this
worker reads, since one bundle reads them one after the other), and resumes at once:
a record ends the wait, on this partition or on another one this worker reads (their
clients keep fetching in the background), so idling costs a bundle every few seconds
without delaying the first record.

One consumer per partition and source serves a worker process, whichever DoFn instance
reads it (:class:`_Client`): the SDK makes a new instance whenever the cached ones are busy
— on Flink every bundle that awaits its checkpoint holds one — and a client per instance kept
fetching, in the background, records that instance would never read (a soak on Flink grew by
~75 MiB a minute with 12 consumers for one partition).

Offsets are committed to the consumer group **only in Beam's bundle finalizer**
(last emitted offset + 1 per partition), i.e. after the runner durably committed
the bundle that consumed the records; commits only move forward, so a finalizer
that runs twice is harmless. A partition without a committed offset starts at
``earliest``, ``latest`` or a timestamp. Each record becomes zero or more events
through a picklable *decoder* (plain Kafka, Event Hubs, Activity Logs); records a
decoder rejects go to the ``dead`` output (stage ``decode``) and are committed
like the rest, since they reached the dead-letter target in the same bundle.
Consecutive events of records with the same millisecond timestamp leave as one
:class:`~meshline.events.EventBatch` element (they share its timestamp).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.iobase import RestrictionProgress, RestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import WindowedValue

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline import observe
from meshline.connectors import acks
from meshline.connectors.kafka.config import ClientErrors
from meshline.connectors.unbounded import GLOBAL_WINDOWS, idle_wait, nothing, watermark_floor
from meshline.events import CloudEvent, EventBatch, dead_letter

__all__ = ["Decoded", "ReadFromKafkaPartitions"]

_LOGGER = logging.getLogger(__name__)
DEAD = "dead"
WAIT_SLICE = 0.1  # seconds: how often a waiting partition looks whether another one has records

# (event, None) for a good event; (raw event, reason) for one to dead-letter.
Decoded = tuple[CloudEvent, str | None]
Decoder = Callable[[Any], Sequence[Decoded]]


def _element(events: list[CloudEvent], ts: Timestamp) -> WindowedValue:
    """Events of one timestamp as one element: an EventBatch when there are several."""
    return WindowedValue(EventBatch(events) if len(events) > 1 else events[0], ts, GLOBAL_WINDOWS)


# --------------------------------------------------------------------------- restriction


@dataclass(frozen=True)
class _Offsets:
    """Offsets ``[next, ∞)`` of one partition; ``next`` is -1 until resolved; ``done`` when ended.

    ``active_at`` (wall-clock seconds) is when a record last arrived; it travels
    with checkpoints so ``idle_timeout`` counts across resumptions.
    """

    next: int = -1
    done: bool = False
    active_at: float = 0.0


_STOP = "stop"
_SEEN = "seen"
_START = "start"


class _OffsetTracker(RestrictionTracker):
    def __init__(self, restriction: _Offsets):
        self._r = restriction

    def current_restriction(self) -> _Offsets:
        return self._r

    def try_claim(self, position: Any) -> bool:
        r = self._r
        if type(position) is int:
            if r.done:
                return False
            self._r = _Offsets(position + 1, False, r.active_at)
            return True
        if position == _STOP:
            self._r = _Offsets(r.next, True, r.active_at)
            return False
        kind, value = position
        if kind == _SEEN:
            self._r = _Offsets(r.next, r.done, value)
        elif kind == _START:
            self._r = _Offsets(value, r.done, r.active_at)
        return not r.done

    def try_split(self, fraction_of_remainder: float):
        r = self._r
        if r.done or fraction_of_remainder != 0:
            return None  # an open-ended log is only checkpointed, never divided
        primary = _Offsets(r.next, True, r.active_at)
        residual = _Offsets(r.next, False, r.active_at)
        self._r = primary
        return primary, residual

    def check_done(self) -> None:
        return None  # every state is a consistent end: unread records stay in the log

    def current_progress(self) -> RestrictionProgress:
        # An open-ended log has no fraction done. Never report zero remaining work: the SDK
        # replaces "completed" with output bytes (maybe 0) and Prism then divides 0 by 0 (NaN split).
        return RestrictionProgress(completed=1 if self._r.done else 0, remaining=1)

    def is_bounded(self) -> bool:
        return self._r.done


class _OffsetProvider(RestrictionProvider):
    def initial_restriction(self, element: Any) -> _Offsets:
        return _Offsets()

    def create_tracker(self, restriction: _Offsets) -> _OffsetTracker:
        return _OffsetTracker(restriction)

    def restriction_size(self, element: Any, restriction: _Offsets) -> int:
        return 0 if restriction.done else 1


_TRACKER = beam.DoFn.RestrictionParam(_OffsetProvider())
_WATERMARK = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())


# --------------------------------------------------------------------------- max_events budget

_BUDGETS: dict[str, list[int]] = {}
_BUDGET_LOCK = threading.Lock()


def _take(token: str, limit: int | None, want: int) -> int:
    """Up to ``want`` of the source's remaining ``max_events`` in this worker process."""
    if limit is None:
        return want
    with _BUDGET_LOCK:
        left = _BUDGETS.setdefault(token, [limit])
        n = min(want, left[0])
        left[0] -= n
        return n


def _give_back(token: str, limit: int | None, n: int) -> None:
    if limit is None or n <= 0:
        return
    with _BUDGET_LOCK:
        _BUDGETS.setdefault(token, [limit])[0] += n


# --------------------------------------------------------------------------- shared clients


@dataclass(eq=False)
class _Client:
    """A partition's consumer in this process; ``position``: the offset its assignment reads
    next (None: seek before reading); ``users``: DoFn instances that hold it."""

    consumer: Any
    position: int | None = None
    users: int = 0
    source: str = ""


_CLIENTS: dict[tuple[str, str, int], _Client] = {}  # (source token, topic, partition) -> client
_CLIENTS_LOCK = threading.Lock()


def _lag() -> list[tuple[dict[str, str], float]]:
    """Consumer lag per partition read in this process: the partition's end offset minus the
    offset its client reads next (the metrics endpoint's ``meshline_source_backlog``)."""
    from confluent_kafka import TopicPartition

    with _CLIENTS_LOCK:
        clients = [(topic, partition, c) for (_, topic, partition), c in _CLIENTS.items()]
    rows = []
    for topic, partition, c in clients:
        position = c.position
        if position is None or position < 0:
            continue
        tp = TopicPartition(topic, partition)
        try:
            _, high = c.consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:  # nothing fetched yet: ask the broker
                _, high = c.consumer.get_watermark_offsets(tp, timeout=2.0)
        except Exception:  # a closed consumer, a broker away: no row this scrape
            continue
        labels = {"source": c.source, "kind": "kafka_lag", "topic": topic, "partition": str(partition)}
        rows.append((labels, float(max(0, high - position))))
    return rows


observe.add_backlog("kafka", _lag)


def _close(consumer: Any, what: str) -> None:
    try:
        consumer.close()
    except Exception:
        _LOGGER.debug("closing the consumer of %s failed", what, exc_info=True)


# --------------------------------------------------------------------------- partitions


# _AUTHENTICATION, SASL_AUTHENTICATION_FAILED, TOPIC/GROUP/CLUSTER_AUTHORIZATION_FAILED
_AUTH_ERRORS = (-169, 58, 29, 30, 31)


class _DiscoverPartitions(beam.DoFn):
    """``topics`` → ``(topic, partition)`` for every partition, from the brokers' metadata."""

    def __init__(self, properties: dict[str, Any], topics: list[str], source_name: str):
        self._properties = properties
        self._topics = topics
        self._name = source_name

    def process(self, _):
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        errors: list[Any] = []
        props = {k: v for k, v in self._properties.items() if not k.startswith("group.")}
        props["error_cb"] = errors.append
        props["log_level"] = 0  # errors are reported once, below, not every 300 ms by librdkafka
        admin = AdminClient(props)
        servers = props.get("bootstrap.servers")
        deadline = time.monotonic() + 60
        for topic in self._topics:
            while True:
                try:
                    md = admin.list_topics(topic=topic, timeout=2)
                except KafkaException as e:
                    md = None
                    errors.append(e.args[0] if e.args else e)
                admin.poll(0)  # serves error_cb
                login = [e for e in errors if getattr(e, "code", lambda: None)() in _AUTH_ERRORS]
                if login:
                    raise ConnectionError(
                        f"source {self._name}: login to {servers} failed: {login[-1].str()}"
                    )
                t = md.topics.get(topic) if md is not None else None
                if t is not None and t.error is None and t.partitions:
                    break
                if time.monotonic() > deadline:
                    cause: Any = t.error if t is not None else (errors[-1] if errors else "no metadata")
                    why = cause.str() if hasattr(cause, "str") else cause
                    raise ConnectionError(
                        f"source {self._name}: topic {topic!r} on {servers} unavailable: {why}"
                    )
                time.sleep(0.5)
            for p in sorted(t.partitions):
                yield (topic, p)


# --------------------------------------------------------------------------- the DoFn


class _ReadPartitionFn(beam.DoFn):
    def __init__(
        self,
        properties: dict[str, Any],
        make_decoder: Callable[[], Decoder],
        *,
        start: str,
        start_millis: int | None,
        max_events: int | None,
        idle_timeout: float | None,
        batch: int,
        poll: float,
        source_name: str,
    ):
        self._properties = properties
        self._make_decoder = make_decoder
        self._start = start
        self._start_millis = start_millis
        self._limit = max_events
        self._token = uuid.uuid4().hex  # one max_events budget per source and run
        self._idle = idle_timeout
        self._batch = batch
        self._poll = poll
        self._name = source_name

    def setup(self):
        self._decode = self._make_decoder()
        self._held: dict[tuple[str, int], _Client] = {}  # the shared clients this instance holds
        self._bundle_read = False
        self._read = beam.metrics.Metrics.counter("meshline", f"source.{self._name}.read")
        self._commits = beam.metrics.Metrics.counter("meshline", f"source.{self._name}.committed")

    def start_bundle(self):
        self._bundle_read = False  # a partition of this bundle read records: the others do not wait

    def teardown(self):
        held, self._held = getattr(self, "_held", {}), {}
        for (topic, partition), client in held.items():
            with _CLIENTS_LOCK:
                client.users -= 1
                key = (self._token, topic, partition)
                last = client.users <= 0 and _CLIENTS.get(key) is client
                if last:
                    del _CLIENTS[key]
            if last:
                _close(client.consumer, f"{topic}[{partition}]")

    # -- consumers ------------------------------------------------------------------

    def _client(self, topic: str, partition: int) -> _Client:
        """The process's client of this source's partition, made on first use."""
        key = (self._token, topic, partition)
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(key)
            if client is None:
                client = _CLIENTS[key] = _Client(self._new_consumer(), source=self._name)
            if self._held.get((topic, partition)) is not client:
                client.users += 1
                self._held[(topic, partition)] = client
        return client

    def _new_consumer(self) -> Any:
        from confluent_kafka import Consumer

        props = dict(self._properties)
        props.setdefault("enable.auto.commit", False)
        props.setdefault("enable.auto.offset.store", False)
        props.setdefault("enable.partition.eof", False)
        props.setdefault("auto.offset.reset", "earliest")
        props.setdefault("queued.max.messages.kbytes", 32768)
        # A fetch waits at the broker until a record arrives or this elapses: librdkafka's
        # default. It bounds how often an idle client asks, not how soon a record comes.
        props.setdefault("fetch.wait.max.ms", 500)
        props.setdefault("log_level", 0)  # client errors go through error_cb (logged once per kind)
        props["error_cb"] = ClientErrors(f"source {self._name}")
        return Consumer(props)

    def _release(self, topic: str, partition: int) -> None:
        """This partition's read ended: close its client (its last commit already ran)."""
        with _CLIENTS_LOCK:
            client = _CLIENTS.pop((self._token, topic, partition), None)
        self._held.pop((topic, partition), None)
        if client is not None:
            _close(client.consumer, f"{topic}[{partition}]")

    def _resolve_start(self, consumer: Any, topic: str, partition: int) -> tuple[int, bool]:
        """``(offset, from_group)``: the group's committed offset, else per ``start``."""
        from confluent_kafka import TopicPartition

        tp = TopicPartition(topic, partition)
        committed = _retrying(lambda: consumer.committed([tp], timeout=30)[0], f"{topic}[{partition}]")
        if committed.error is None and committed.offset >= 0:
            return int(committed.offset), True
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
        if self._start == "earliest":
            return int(low), False
        if self._start == "latest":
            return int(high), False
        at = TopicPartition(topic, partition, int(self._start_millis or 0))
        found = consumer.offsets_for_times([at], timeout=30)[0]
        return (int(found.offset) if found.offset >= 0 else int(high)), False

    def _seek(self, client: _Client, topic: str, partition: int, offset: int) -> None:
        from confluent_kafka import TopicPartition

        if client.position != offset:
            client.consumer.assign([TopicPartition(topic, partition, offset)])
            client.position = offset

    def _commit(self, topic: str, partition: int, offset: int) -> None:
        """Commit ``offset`` (next to read) for the group. Forwards only: the finalizer's commits
        go through :func:`acks.register` with a position, which orders them across DoFn instances.
        A partition whose read ended has no client left: a short-lived one commits."""
        from confluent_kafka import TopicPartition

        with _CLIENTS_LOCK:
            client = _CLIENTS.get((self._token, topic, partition))
        consumer = client.consumer if client is not None else self._new_consumer()
        tp = TopicPartition(topic, partition, offset)
        try:
            _retrying(lambda: consumer.commit(offsets=[tp], asynchronous=False), f"{topic}[{partition}]")
        finally:
            if client is None:
                _close(consumer, f"{topic}[{partition}]")
        self._commits.inc()

    def _caught_up(self, consumer: Any, topic: str, partition: int, next_offset: int) -> bool:
        """Nothing left to read below the partition's end (its high watermark).

        ``idle_timeout`` ends a partition's read only then: a consumer slow to connect or to
        fetch (a loaded machine, a slow SASL handshake) is not idle while records wait. The
        consumer's own position counts too: it moves past what is never delivered
        (transaction markers). When the broker cannot say, the idle clock alone decides.
        """
        from confluent_kafka import TopicPartition

        tp = TopicPartition(topic, partition)
        try:
            _, high = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            position = consumer.position([tp])[0].offset
        except Exception:
            return True
        return high is None or high < 0 or max(next_offset, position) >= high

    def _at_end(self, consumer: Any, topic: str, partition: int, next_offset: int) -> bool:
        """As far as the client's last fetch response says (no request), nothing is left to read."""
        from confluent_kafka import KafkaException, TopicPartition

        try:
            high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)[1]
        except KafkaException:
            return False
        return high >= 0 and next_offset >= high

    # -- reading --------------------------------------------------------------------

    def _wait_first(self, consumer: Any, topic: str, partition: int, wait: float) -> list[Any]:
        """This partition's first record within ``wait`` seconds; none, sooner, when another
        partition this worker reads has records (its client fetched them in the background):
        the bundle then goes on to it, or ends so that it is resumed."""
        until = time.monotonic() + wait
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return []
            messages = consumer.consume(num_messages=1, timeout=min(left, WAIT_SLICE))
            if messages or self._others_have_records(topic, partition):
                return messages

    def _partitions_here(self) -> int:
        """How many partitions of this source this process reads (one bundle reads them in turn)."""
        with _CLIENTS_LOCK:
            return sum(1 for key in _CLIENTS if key[0] == self._token)

    def _others_have_records(self, topic: str, partition: int) -> bool:
        from confluent_kafka import KafkaException, TopicPartition

        with _CLIENTS_LOCK:
            others = [
                (key[1:], c)
                for key, c in _CLIENTS.items()
                if key[0] == self._token and key[1:] != (topic, partition)
            ]
        for key, c in others:
            position = c.position
            if position is None:
                continue
            try:  # cached: the end offset of the last fetch response, no request
                high = c.consumer.get_watermark_offsets(TopicPartition(*key), cached=True)[1]
            except KafkaException:
                continue
            if high > position:
                return True
        return False

    def process(
        self,
        element: tuple[str, int],
        finalizer=beam.DoFn.BundleFinalizerParam,  # must precede the restriction parameters
        tracker=_TRACKER,
        watermark=_WATERMARK,
    ):
        topic, partition = element
        client = self._client(topic, partition)
        consumer = client.consumer
        r = tracker.current_restriction()
        if r.next < 0:
            offset, from_group = self._resolve_start(consumer, topic, partition)
            tracker.try_claim((_START, offset))
            if not from_group:
                # Records before a latest/timestamp start are skipped on purpose: record where the
                # group starts, so that the next run (whatever its start) goes on from here.
                self._commit(topic, partition, offset)
        if not r.active_at:
            tracker.try_claim((_SEEN, time.time()))
        start = tracker.current_restriction().next
        self._seek(client, topic, partition, start)

        budget = _take(self._token, self._limit, self._batch)
        if budget <= 0:
            tracker.try_claim(_STOP)  # max_events reached by this source
            self._release(topic, partition)
            return
        decode = self._decode
        name = self._name
        last = -1
        emitted = 0
        newest = None
        wait = 0.0  # an earlier partition of this bundle read records: no waiting, on to the commit
        if not self._bundle_read:
            idle_for = time.time() - tracker.current_restriction().active_at
            wait = idle_wait(self._poll, idle_for, self._idle) / max(1, self._partitions_here())
        millis = -1
        ts = Timestamp(0)
        floor = watermark_floor(watermark) or Timestamp(0)  # never stamp a record behind it
        try:
            while emitted < budget:
                want = min(budget - emitted, 1000)
                messages = consumer.consume(num_messages=want, timeout=0)
                if not messages and wait:
                    # Nothing buffered: wait for the first record only (a batch-sized wait
                    # would hold the bundle until the timeout whenever fewer records exist).
                    messages = self._wait_first(consumer, topic, partition, wait)
                    if messages and want > 1:
                        messages += consumer.consume(num_messages=want - 1, timeout=0)
                if not messages:
                    break
                wait = 0.0  # records are flowing: take what is buffered, then commit this bundle
                good = []
                for m in messages:
                    err = m.error()
                    if err is None:
                        good.append(m)
                    elif err.fatal() or not err.retriable():
                        raise RuntimeError(f"source {name}: {topic}[{partition}]: {err.str()}")
                    else:
                        _LOGGER.warning("source %s: %s[%d]: %s", name, topic, partition, err.str())
                if not good:
                    continue
                if not tracker.try_claim(good[-1].offset()):  # claims the batch's offsets at once
                    # The runner checkpointed the restriction while this batch was fetched (a
                    # long idle wait makes that likely): the batch belongs to the residual, but
                    # the client handed it out already. Its next read must seek back to it.
                    client.position = None
                    return
                run: list[CloudEvent] = []  # events of one millisecond: one EventBatch element
                for m in good:
                    t = m.timestamp()[1]
                    if t != millis:  # records produced together share their millisecond
                        if run:
                            yield _element(run, ts)
                            run = []
                        millis, ts = t, max(Timestamp(micros=t * 1000), floor)
                    for event, problem in decode(m):
                        if problem is None:
                            run.append(event)
                        else:
                            bad = dead_letter(event, problem, "decode", step=name)
                            yield beam.pvalue.TaggedOutput(DEAD, WindowedValue(bad, ts, GLOBAL_WINDOWS))
                if run:
                    yield _element(run, ts)
                last = good[-1].offset()
                emitted += len(good)
                newest = ts
            if last >= 0:
                client.position = last + 1
                self._bundle_read = True
                tracker.try_claim((_SEEN, time.time()))
                _advance(watermark, newest)
                self._read.inc(emitted)
                _give_back(self._token, self._limit, budget - emitted)
                tracker.defer_remainder(Duration(seconds=0))
                return
            _give_back(self._token, self._limit, budget)
            idle = time.time() - tracker.current_restriction().active_at
            if (
                self._idle is not None
                and idle >= self._idle
                and self._caught_up(consumer, topic, partition, start)
            ):
                tracker.try_claim(_STOP)  # idle_timeout: this partition's read ends cleanly
                self._release(topic, partition)
                return
            if self._at_end(consumer, topic, partition, start):
                # Idle and read to its end: downstream windows may close. Not before: a backlog
                # the client has not fetched yet would be stamped forward (see the floor above).
                _advance(watermark, Timestamp.now() - Duration(seconds=1))
            tracker.defer_remainder(Duration(seconds=0))  # the wait was in the fetch: resume at once
        except BaseException:
            last = -1  # a failed bundle commits nothing: its records are read again
            client.position = None
            raise
        finally:
            if last >= 0:
                next_offset = last + 1
                acks.register(
                    finalizer,
                    lambda: self._commit(topic, partition, next_offset),
                    position=((self._token, topic, partition), next_offset),
                )
            else:
                # Nothing to commit; Prism still asks to finalize every bundle of this stage, and
                # a bundle without a callback is already released by then (a noisy traceback).
                finalizer.register(nothing)


_COORDINATOR_BUSY = (16, 15, 14)  # NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS


def _retrying(fn: Callable[[], Any], what: str, deadline: float = 60.0) -> Any:
    """``fn()``, retried while Kafka says the error is retriable (e.g. the group coordinator is moving)."""
    from confluent_kafka import KafkaError, KafkaException

    until = time.monotonic() + deadline
    delay = 0.1
    while True:
        try:
            return fn()
        except KafkaException as e:
            err = e.args[0] if e.args else None
            retriable = isinstance(err, KafkaError) and (err.retriable() or err.code() in _COORDINATOR_BUSY)
            if not retriable or time.monotonic() > until:
                raise
            _LOGGER.info("%s: %s; retrying", what, err)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _advance(watermark: Any, ts: Timestamp | None) -> None:
    if ts is None:
        return
    current = watermark.current_watermark()
    if current is None or ts > current:
        watermark.set_watermark(ts)


class ReadFromKafkaPartitions(beam.PTransform):
    """``PBegin`` → ``(events, dead_letters)``: every partition of ``topics`` through ``make_decoder()``."""

    def __init__(
        self,
        properties: dict[str, Any],
        topics: list[str],
        make_decoder: Callable[[], Decoder],
        *,
        source_name: str,
        start: str = "earliest",
        start_millis: int | None = None,
        max_events: int | None = None,
        idle_timeout: float | None = None,
        batch: int = 5000,
        poll: float = 1.0,
    ):
        super().__init__()
        self._properties = properties
        self._topics = topics
        self._name = source_name
        self._fn = _ReadPartitionFn(
            properties,
            make_decoder,
            start=start,
            start_millis=start_millis,
            max_events=max_events,
            idle_timeout=idle_timeout,
            batch=batch,
            poll=poll,
            source_name=source_name,
        )

    def expand(self, pbegin):
        # Prism asks a slow bundle of an SDF stage to split; Beam 2.77's Python SDK can answer
        # with a NaN progress (output byte mean not sampled yet) and fail the job. A log
        # partition cannot be divided anyway (try_split only checkpoints), so opt out.
        from apache_beam.options.pipeline_options import DebugOptions

        pbegin.pipeline.options.view_as(DebugOptions).add_experiment("prism_disable_sdf_split")
        out = (
            pbegin
            | "Impulse" >> beam.Impulse()
            | "Partitions" >> beam.ParDo(_DiscoverPartitions(self._properties, self._topics, self._name))
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(self._fn).with_outputs(DEAD, main="events").with_output_types(CloudEvent)
        )
        return out.events, out[DEAD]
