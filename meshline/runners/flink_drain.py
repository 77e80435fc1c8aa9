"""A Flink streaming run whose sources have all ended drains and ends by itself.

With checkpointing on, Beam keeps Flink's Impulse sources alive for good (its
``ImpulseSourceFunction`` waits until cancelled), so a streaming job never finishes
on its own, even when every Meshline source has ended (``max_events``,
``idle_timeout``). Beam's ``--shutdown_sources_after_idle_ms`` ends it, but loses the
pending elements of a source that has not ended (measured), so Meshline does not use it.

Instead the CLI watches the job through Flink's REST API. A source that has ended
releases its watermark hold, and once every source has, every operator's output
watermark reaches the end of time (Beam's ``+inf``; Long.MAX in Flink); a source that
goes on (even an idle one) holds it back for good. When that is seen on two polls in
a row, the CLI asks Flink to *stop with a savepoint and drain* (``POST
/jobs/:id/stop {"drain": true}``): Flink flushes what is in flight, takes a final
savepoint — a checkpoint, so Beam finalizes the bundles it covers and the sources
acknowledge what they emitted — and finishes the job, and ``meshline run`` returns 0.

The REST address is the ``--flink-master`` of a cluster, or, for ``[local]``, the port
of the job-server JVM's embedded MiniCluster that answers as Flink's REST API. The
savepoint goes to a temporary directory removed after the run (for a cluster: its own
``state.savepoints.dir`` when it has one; else the same path, which a cluster on another
machine creates there and leaves).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

__all__ = ["END_OF_TIME_MS", "Drainer", "all_ended", "find_local_rest", "in_flight"]

_LOGGER = logging.getLogger(__name__)

# Beam's GlobalWindow.maxTimestamp() in milliseconds: a watermark at or past it is the end.
END_OF_TIME_MS = 9223371950454775
POLL_S = 2.0  # while the job starts, and once every source has ended (a few small REST calls)
RUNNING_POLL_S = 5.0  # while some source still runs: the REST and metric fetches are Flink's idle cost
SETTLE_WARN_POLLS = 15  # watermarks at the end but events still in flight for 30 s: say so, once
TIMEOUT_S = 5.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> Any:
    with _OPENER.open(url, timeout=TIMEOUT_S) as response:
        return json.loads(response.read() or b"null")


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with _OPENER.open(request, timeout=TIMEOUT_S) as response:
        return json.loads(response.read() or b"null")


def find_local_rest(job_server_port: int) -> str | None:
    """The REST URL of the MiniCluster in the job-server JVM serving ``job_server_port``."""
    from meshline.runners import listeners

    if not listeners.supported():
        return None
    mine = listeners.process_tree(os.getpid())[1:]
    found = listeners.listeners(mine)
    pids = {x.pid for x in found if x.protocol == "tcp" and x.port == job_server_port}
    for listener in found:
        if listener.pid in pids and listener.protocol == "tcp" and listener.port != job_server_port:
            url = f"http://127.0.0.1:{listener.port}"
            try:
                body = _get(f"{url}/config")
            except (OSError, ValueError, http.client.HTTPException):
                continue  # one of Beam's gRPC ports
            if isinstance(body, dict) and body.get("flink-version"):
                return url
    return None


def in_flight(counters: dict[str, int]) -> dict[str, int]:
    """Per target, how many events handed to it are neither stored nor dead-lettered yet
    (Meshline's committed counters, :mod:`meshline.runners.committed`); only targets with some.

    Watermarks at the end say every source ended, not that the last bundles downstream were
    finished: a drain then (measured: a Kafka → file run, 7 of 40 events) ended the job with
    them unwritten while the sources had committed them. With no counters (an SDK worker
    elsewhere) there is nothing to wait for."""
    missing: dict[str, int] = {}
    for key, n in counters.items():
        if key.startswith("target.") and key.endswith(".in"):
            base = key[: -len("in")]
            done = sum(counters.get(base + k, 0) for k in ("delivered", "dead_lettered", "already_stored"))
            if done < n:
                missing[key[len("target.") : -len(".in")]] = n - done
    return missing


def _counts(missing: dict[str, int]) -> str:
    return ", ".join(f"target {name}: {n}" for name, n in sorted(missing.items()))


def all_ended(watermarks: list[int]) -> bool:
    """Every operator's output watermark is at the end of time (and there is at least one)."""
    return bool(watermarks) and all(w >= END_OF_TIME_MS for w in watermarks)


def _watermark_queries(rest: str, job: str) -> list[str]:
    """One metrics URL per vertex of the job, asking for the output watermark of each operator
    of each subtask; empty until Flink reports them all."""
    queries = []
    for vertex in _get(f"{rest}/jobs/{job}").get("vertices", []):
        base = f"{rest}/jobs/{job}/vertices/{vertex['id']}/metrics"
        ids = [m["id"] for m in _get(base) if str(m.get("id", "")).endswith(".currentOutputWatermark")]
        if not ids:
            return []  # not reported yet: nothing can be told
        queries.append(f"{base}?get={','.join(urllib.parse.quote(i, safe='') for i in ids)}")
    return queries


def _output_watermarks(queries: list[str]) -> list[int]:
    found: list[int] = []
    for query in queries:
        for metric in _get(query):
            try:
                found.append(int(metric["value"]))
            except (KeyError, TypeError, ValueError):
                return []
    return found


class Drainer:
    """A daemon thread that drains the job named ``job_name`` once all its sources have ended."""

    def __init__(
        self, rest: Callable[[], str | None], job_name: str, say: Callable[[str], Any], remote: bool
    ):
        self._rest = rest
        self._name = job_name
        self._say = say
        self._remote = remote
        self._done = threading.Event()
        self._started = time.time() * 1000 - 60_000  # jobs submitted since shortly before
        self._local_dir: str | None = None
        self.drained = False

    def start(self) -> Drainer:
        threading.Thread(target=self._run, name="meshline-flink-drain", daemon=True).start()
        return self

    def close(self) -> None:
        self._done.set()
        if self._local_dir is not None:
            shutil.rmtree(self._local_dir, ignore_errors=True)

    def _job(self, rest: str) -> str | None:
        jobs = _get(f"{rest}/jobs/overview").get("jobs", [])
        mine = [
            j
            for j in jobs
            if j.get("name") == self._name
            and j.get("state") == "RUNNING"
            and j["start-time"] >= self._started
        ]
        return max(mine, key=lambda j: j["start-time"])["jid"] if mine else None

    def _run(self) -> None:
        from meshline.runners import committed

        rest = job = None
        queries: list[str] = []
        seen = waiting = 0
        interval = POLL_S
        while not self._done.wait(interval):
            try:
                rest = rest or self._rest()
                job = job or (self._job(rest) if rest else None)
                if rest is None or job is None:
                    continue
                # the operators do not change while the job runs: their metrics are listed once
                queries = queries or _watermark_queries(rest, job)
                ended = all_ended(_output_watermarks(queries))
                interval = POLL_S if ended or not queries else RUNNING_POLL_S
                missing = in_flight(committed.counters()) if ended else {}
                seen = seen + 1 if ended and not missing else 0
                waiting = waiting + 1 if missing else 0
                if waiting == SETTLE_WARN_POLLS:
                    self._say(
                        f"{self._name}: every source has ended, but not every event handed to a target "
                        f"is stored or dead-lettered yet ({_counts(missing)}); waiting before draining "
                        "(Ctrl-C stops the run)"
                    )
                if seen >= 2:
                    self._drain(rest, job)
                    return
            except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException) as e:
                _LOGGER.debug("Flink REST: %s", e)  # the job is starting or stopping: ask again

    def _target(self, rest: str) -> str:
        if self._remote:
            try:
                for entry in _get(f"{rest}/jobmanager/config"):
                    if entry.get("key") == "state.savepoints.dir" and entry.get("value"):
                        return str(entry["value"])
            except (OSError, ValueError, AttributeError):
                pass
        # Removed after the run; on a cluster elsewhere the JobManager's machine gets this path.
        self._local_dir = tempfile.mkdtemp(prefix="meshline-savepoint-")
        return f"file://{self._local_dir}"

    def _drain(self, rest: str, job: str) -> None:
        self._say(f"{self._name}: every source has ended; draining the Flink job (a final savepoint)")
        self.drained = True
        try:
            _post(f"{rest}/jobs/{job}/stop", {"drain": True, "targetDirectory": self._target(rest)})
        except (OSError, ValueError, http.client.HTTPException) as e:
            self._say(f"{self._name}: could not ask Flink to drain the job: {e}; stop it with Ctrl-C")
