"""The ``direct`` runner: Beam's in-process ``FnApiRunner``, keeping the metrics of finished bundles.

``FnApiRunner.run()`` returns only when the pipeline is done, so when a run is
interrupted (Ctrl-C, SIGTERM) there is no result to ask for metrics. This runner
adds each bundle's metrics, once the bundle has finished, to a process-wide record
(:func:`committed_counters`): what a target counts as delivered there is stored,
since targets write before their bundle ends. The record starts empty at each run.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.metrics.monitoring_infos import consolidate
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiMetrics

__all__ = ["InProcessRunner", "committed_counters"]

_LOCK = threading.Lock()
_BY_STAGE: dict[str, list[Any]] = {}


class InProcessRunner(FnApiRunner):  # type: ignore[misc]
    """``FnApiRunner`` that records the metrics of every bundle it finishes."""

    def run_pipeline(self, pipeline: Any, options: Any) -> Any:
        with _LOCK:
            _BY_STAGE.clear()
        return super().run_pipeline(pipeline, options)

    def _execute_bundle(self, context: Any, bundle_context_manager: Any, bundle_input: Any) -> Any:
        result = super()._execute_bundle(context, bundle_context_manager, bundle_input)
        infos = list(result.process_bundle.monitoring_infos)
        stage = bundle_context_manager.stage.name
        with _LOCK:
            _BY_STAGE[stage] = list(consolidate(itertools.chain(infos, _BY_STAGE.get(stage, ()))))
        return result


def committed_counters(namespace: str = "meshline") -> dict[str, int]:
    """The counters of ``namespace`` summed over the bundles the current run has finished."""
    with _LOCK:
        by_stage = dict(_BY_STAGE)
    out: dict[str, int] = {}
    for result in FnApiMetrics(by_stage).query(MetricsFilter().with_namespace(namespace))["counters"]:
        name = result.key.metric.name
        out[name] = out.get(name, 0) + int(result.committed or 0)
    return out
