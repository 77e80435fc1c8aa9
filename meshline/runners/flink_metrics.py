"""Meshline's counters as a Flink cluster reports them, read from Flink's REST API.

Beam's Flink runner hands the Python SDK's user counters to Flink twice
(``org.apache.beam.runners.flink.metrics.FlinkMetricContainer``):

* as **Flink metrics** of the operator that runs the fused stage, named
  ``<namespace>.<name>`` (``meshline.source.orders.in``). Flink's REST API and web
  UI show them per subtask as ``<subtask>.<operator>.meshline_source_orders_in``
  (its metric query service turns ``.`` into ``_``; the Prometheus reporter names
  them ``flink_taskmanager_job_task_operator_meshline_source_orders_in``). They are
  live while the job runs, but the name is lossy (``_`` is both a separator and a
  character of names like ``dead_lettered``), and a counter that two transforms of one
  fused stage increment (the dead-letter target's ``in``) keeps only the last
  transform's value there: Beam keys the Flink counter by namespace and name alone.
* as the **accumulator** ``__metricscontainers``, written when each task ends: every
  counter with its exact name and transform. Flink keeps a finished job's
  accumulators with the job (``/jobs/<id>/accumulators``, and the history server's
  archive), so this is what :func:`meshline_counters` reads: exact and summed over
  transforms and subtasks, for a job that has ended (batch, or a drained stream).

:func:`live_counters` reads the metrics of a running job, by Flink's name
(:func:`flink_name`), for a look while it runs.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
from typing import Any

__all__ = [
    "ACCUMULATOR",
    "NAMESPACE",
    "counters_of_accumulator",
    "find_job",
    "flink_name",
    "live_counters",
    "meshline_counters",
]

NAMESPACE = "meshline"
ACCUMULATOR = "__metricscontainers"  # FlinkMetricContainer.ACCUMULATOR_NAME
USER_COUNTER = "beam:metric:user:sum_int64:v1"
TIMEOUT_S = 10.0


def _rest(rest_url: str) -> str:
    """``HOST:PORT`` (what ``--flink-master`` takes) or a URL, as a URL without a trailing slash."""
    url = rest_url if "://" in rest_url else f"http://{rest_url}"
    return url.rstrip("/")


def _get(url: str, timeout: float) -> Any:
    # No proxy: the cluster is usually as near as the machine that ran the job.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return json.loads(response.read())


def _varint64(raw: bytes) -> int:
    """Beam's encoding of a sum_int64 payload: an unsigned base-128 varint of the two's complement."""
    value = shift = 0
    for byte in raw:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value - (1 << 64) if value >= 1 << 63 else value


def counters_of_accumulator(value: str, namespace: str = NAMESPACE) -> dict[str, int]:
    """The counters of ``namespace`` in a ``__metricscontainers`` accumulator's value, by name.

    The value is Beam's ``MetricResults`` as JSON: monitoring infos, one per counter and
    transform (``labels``: ``NAMESPACE``, ``NAME``, ``PTRANSFORM``) with a base64 payload.
    A name counted in several transforms (or several subtasks, merged by Flink) is summed,
    as Beam's own metrics API does.
    """
    results = json.loads(value).get("metrics", {})
    infos = results.get("committed") or results.get("attempted") or []
    out: dict[str, int] = {}
    for info in infos:
        labels = info.get("labels", {})
        if info.get("urn") != USER_COUNTER or labels.get("NAMESPACE") != namespace:
            continue
        name = labels["NAME"]
        out[name] = out.get(name, 0) + _varint64(base64.b64decode(info.get("payload", "")))
    return out


def meshline_counters(rest_url: str, job_id: str, *, timeout: float = TIMEOUT_S) -> dict[str, int]:
    """Meshline's counters of the Flink job ``job_id`` by Meshline's names (``target.out.delivered``).

    ``rest_url``: the JobManager's REST endpoint (``HOST:PORT`` or a URL). Empty while the
    job runs: Beam writes the accumulator as each task ends.
    """
    body = _get(f"{_rest(rest_url)}/jobs/{job_id}/accumulators", timeout)
    for acc in body.get("user-task-accumulators", []):
        if acc.get("name") == ACCUMULATOR:
            return counters_of_accumulator(acc["value"])
    return {}


def find_job(rest_url: str, name: str, *, timeout: float = TIMEOUT_S) -> str | None:
    """The id of the most recently started job called ``name`` (Meshline's job name is the
    integration's, unless ``--job_name`` says otherwise); ``None`` if the cluster has none."""
    jobs = _get(f"{_rest(rest_url)}/jobs/overview", timeout).get("jobs", [])
    named = [j for j in jobs if j.get("name") == name]
    return max(named, key=lambda j: j.get("start-time", 0))["jid"] if named else None


def flink_name(name: str, namespace: str = NAMESPACE) -> str:
    """The name Flink's REST API gives a counter: ``source.in.in`` → ``meshline_source_in_in``."""
    return f"{namespace}.{name}".replace(".", "_")


def live_counters(rest_url: str, job_id: str, *, timeout: float = TIMEOUT_S) -> dict[str, int]:
    """Meshline's counters of a running job, by Flink's name (:func:`flink_name`), summed over
    operators and subtasks.

    What the JobManager last fetched from the TaskManagers (every
    ``metrics.fetcher.update-interval``, 10 s by default); a task's metrics go once it ends,
    so prefer :func:`meshline_counters` for a job that has ended.
    """
    base = f"{_rest(rest_url)}/jobs/{job_id}"
    out: dict[str, int] = {}
    prefix = NAMESPACE + "_"
    for vertex in _get(base, timeout).get("vertices", []):
        url = f"{base}/vertices/{vertex['id']}/metrics"
        ids = [m["id"] for m in _get(url, timeout) if m["id"].rsplit(".", 1)[-1].startswith(prefix)]
        if not ids:
            continue
        query = urllib.parse.urlencode({"get": ",".join(ids)}, safe=",")
        for metric in _get(f"{url}?{query}", timeout):
            name = metric["id"].rsplit(".", 1)[-1]  # "<subtask>.<operator>.<name>"
            out[name] = out.get(name, 0) + int(float(metric["value"]))
    return out
