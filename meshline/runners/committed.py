"""What the SDK workers of this process finished: Meshline's counters of completed bundles.

When a run is interrupted there is often no runner to ask what was done: the direct runner
(``FnApiRunner``) returns a result only when the pipeline is done, and Flink's job server
reports no metrics while it streams. But on the direct runner, Prism and Flink the Python
SDK worker runs in the ``meshline run`` process (loopback), and each bundle it finishes
answers the runner with that bundle's metrics. :func:`install` has the worker add those to
a process-wide record as well; :func:`counters` sums them. Targets store what they were
given before their bundle finishes (``finish_bundle``), so a target's ``delivered`` there
counts what is in place.
"""

from __future__ import annotations

import threading
from typing import Any

from meshline import observe

__all__ = ["counters", "install", "reset"]

_LOCK = threading.Lock()
_TOTALS: dict[str, int] = {}
_INSTALLED = False
NAMESPACE = "meshline"


def install() -> None:
    """Record the counters of every bundle an SDK worker of this process finishes (idempotent)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from apache_beam.runners.worker import sdk_worker

        original = sdk_worker.SdkWorker.process_bundle

        def process_bundle(self: Any, request: Any, instruction_id: str) -> Any:
            try:
                response = original(self, request, instruction_id)
            except BaseException:
                if observe.ENABLED:
                    observe.bundle_done(None)  # a failed bundle delivered nothing: forget its stamps
                raise
            try:
                mine = _record(response.process_bundle.monitoring_infos)
                if observe.ENABLED:
                    observe.bundle_done(mine)  # its targets stored what they were given: latency
            except Exception:  # the record is a report; the bundle is done either way
                pass
            return response

        sdk_worker.SdkWorker.process_bundle = process_bundle  # type: ignore[method-assign]
        _INSTALLED = True


def _record(infos: Any) -> dict[str, int]:
    """Add a finished bundle's Meshline counters to the totals; return them."""
    from apache_beam.metrics import monitoring_infos as mi

    mine: dict[str, int] = {}
    for info in infos:  # ~190 per bundle of a small pipeline, most of them Beam's own
        if info.urn == mi.USER_COUNTER_URN and info.labels.get(mi.NAMESPACE_LABEL) == NAMESPACE:
            name = info.labels[mi.NAME_LABEL]
            mine[name] = mine.get(name, 0) + int(mi.extract_counter_value(info))
    if not mine:
        return mine
    with _LOCK:
        for name, value in mine.items():
            _TOTALS[name] = _TOTALS.get(name, 0) + value
    return mine


def reset() -> None:
    """Forget what was recorded (a new run)."""
    with _LOCK:
        _TOTALS.clear()


def counters() -> dict[str, int]:
    """Meshline's counters summed over the bundles finished since :func:`reset`."""
    with _LOCK:
        return dict(_TOTALS)
