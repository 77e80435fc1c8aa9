"""The Prometheus exposition of a running integration (``meshline run --metrics-port``).

Families (Prometheus naming: a ``meshline_`` prefix, base units, ``_total`` counters):

- ``meshline_events_total{integration, stage, name, outcome}``: the counts of the summary
  table while the run goes on, per source, trigger, step and target — ``in``, ``matched``
  (triggers), ``out`` (``delivered`` too for targets), ``dead_lettered`` — and the other
  counters a stage keeps under their own outcome (``retried``, ``committed``,
  ``acknowledged``, ``filter_errors``, ``http_unauthorized`` …);
- ``meshline_delivery_latency_seconds{integration, target}``: a histogram of the time from
  an event's timestamp at its source to the end of the bundle in which its target stored
  it (see :mod:`meshline.observe`);
- ``meshline_source_backlog{integration, source, …}``: what waits in a source's system
  (Kafka: ``meshline_source_backlog{kind="kafka_lag", topic, partition}``);
- ``meshline_dead_letters_dropped_total``: failures with no dead-letter target;
- the process's own (``process_cpu_seconds_total``, ``process_resident_memory_bytes`` …).

Counts come from the SDK workers of this process: the finished bundles' counters
(:mod:`meshline.runners.committed`) and, between bundle ends, the router's live totals
(:mod:`meshline.compiler.progress`), whichever is higher.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from meshline import observe
from meshline.compiler import progress
from meshline.compiler.summary import stage_rows
from meshline.runners import committed

if TYPE_CHECKING:
    from meshline.spec.model import Integration

__all__ = ["CONTENT_TYPE", "MetricsCollector", "exposition", "live_counters", "registry"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_MAIN = {"in", "out", "matched", "dead_lettered", "delivered", "decode_errors", "failed"}


def live_counters() -> dict[str, int]:
    """Meshline's counters now: finished bundles' values, or the live totals where higher."""
    out = committed.counters()
    for k, v in progress.snapshot().items():
        if v > out.get(k, 0):
            out[k] = v
    return out


def _extras(counters: dict[str, int], prefix: str) -> Iterator[tuple[str, int]]:
    """The stage's other counters (``prefix`` + outcome), named for Prometheus."""
    for key, value in counters.items():
        if key.startswith(prefix):
            outcome = key[len(prefix) :]
            if outcome not in _MAIN and outcome and "." not in outcome.replace("http.", "", 1):
                yield outcome.replace(".", "_"), value


class MetricsCollector:
    """A prometheus_client collector reading the integrations of this run at each scrape."""

    def __init__(self, integrations: Callable[[], list[Integration]]):
        self._integrations = integrations

    def collect(self) -> Iterator[Any]:
        counters = live_counters()
        events = CounterMetricFamily(
            "meshline_events",
            "Events per stage and outcome (in, matched, out, delivered, dead_lettered, ...)",
            labels=["integration", "stage", "name", "outcome"],
        )
        latency = HistogramMetricFamily(
            "meshline_delivery_latency_seconds",
            "Seconds from an event's source timestamp to the end of the bundle its target stored it in",
            labels=["integration", "target"],
        )
        backlog = GaugeMetricFamily(
            "meshline_source_backlog",
            "Events waiting in a source's system (Kafka consumer lag per partition, queue depth)",
            labels=["integration", "source", "kind", "topic", "partition", "queue"],
        )
        hist = observe.latency()
        for integration in self._integrations():
            name = integration.name
            for row in stage_rows(integration, counters):
                stage, who = row["stage"], row["name"]
                for outcome in ("in", "matched", "out", "dead_lettered"):
                    if outcome in row:
                        events.add_metric([name, stage, who, outcome], row[outcome])
                if stage == "target":
                    events.add_metric([name, stage, who, "delivered"], row["out"])
                for outcome, value in _extras(counters, f"{stage}.{who}."):
                    events.add_metric([name, stage, who, outcome], value)
            for t in integration.targets:
                if t.name not in hist:
                    continue
                buckets, _count, total = hist[t.name]
                cumulative, running = [], 0
                for bound, n in zip([*observe.BUCKETS, float("inf")], buckets):
                    running += n
                    cumulative.append((_le(bound), running))
                latency.add_metric([name, t.name], cumulative, total)
            sources = {s.name for s in integration.sources}
            for labels, depth in observe.backlog():
                if labels.get("source") in sources:
                    backlog.add_metric(
                        [
                            name,
                            labels["source"],
                            labels.get("kind", ""),
                            labels.get("topic", ""),
                            labels.get("partition", ""),
                            labels.get("queue", ""),
                        ],
                        depth,
                    )
        yield events
        yield latency
        yield backlog
        yield CounterMetricFamily(
            "meshline_dead_letters_dropped",
            "Failed events with no dead-letter target (counted and logged)",
            value=counters.get("deadletter.dropped", 0),
        )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def registry(integrations: Callable[[], list[Integration]]) -> CollectorRegistry:
    """A registry of Meshline's families and the process's own."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(MetricsCollector(integrations))  # type: ignore[arg-type]
    ProcessCollector(registry=reg)
    return reg


def exposition(reg: CollectorRegistry) -> str:
    """The Prometheus text format (version 0.0.4)."""
    return generate_latest(reg).decode("utf-8")
