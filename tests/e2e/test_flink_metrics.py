"""Meshline's counters in a Flink cluster's own metrics, read the ways an operator of the cluster would.

Both tests run on one standalone cluster (tests/e2e/flink_support.py) whose TaskManager
also pushes its metrics, through Flink's Prometheus reporter module, to a stand-in
Pushgateway of this test: the pull reporter (``PrometheusReporter``) would listen on all
interfaces, which a test must not; the push reporter names metrics the same way
(both are ``AbstractPrometheusReporter``) and listens on nothing.

* A batch run with known counts: after it, ``/jobs/<id>/accumulators`` (what
  :func:`meshline.runners.flink_metrics.meshline_counters` reads) holds every counter by
  its Meshline name with the value ``meshline run`` reports, and the summary table is the
  one the direct runner prints for the same input (tests/e2e/test_summary.py).
* A streaming webhook run: while it runs, the REST API's vertex metrics and the Prometheus
  reporter show the counters by Flink's names (``meshline_source_hook_in``,
  ``flink_taskmanager_job_task_operator_meshline_source_hook_in``); once it has drained
  (``idle_timeout``), the accumulator has them by Meshline's names.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meshline.runners.flink_metrics import find_job, flink_name, live_counters, meshline_counters
from tests.e2e.flink_support import flink_cluster, flink_job_server
from tests.e2e.test_summary import SPEC as SUMMARY_SPEC
from tests.e2e.test_summary import _events, _table
from tests.harness import dies_with_us, free_port, meshline_exe, rows_in, wait_listening

pytestmark = pytest.mark.e2e
RUN_TIMEOUT = 240
PROM_PREFIX = "flink_taskmanager_job_task_operator_"
PROM_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})?\s+(?P<value>\S+)")


@pytest.fixture(scope="module")
def job_server() -> str:
    return flink_job_server()


class Pushgateway:
    """A stand-in Prometheus Pushgateway on 127.0.0.1: keeps the text of every push."""

    def __init__(self) -> None:
        self.pushes: list[str] = []
        pushes = self.pushes

        class Handler(BaseHTTPRequestHandler):
            def _take(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                pushes.append(self.rfile.read(size).decode(errors="replace"))
                self.send_response(200)
                self.end_headers()

            do_PUT = do_POST = do_DELETE = _take

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def series(self, job_id: str) -> dict[str, tuple[str, float]]:
        """The latest value of every pushed ``flink_…_meshline_…`` series of the Flink job ``job_id``,
        by its name and labels: ``{name{labels}: (name, value)}``. (By id: the reporter turns
        a label value's ``-`` into ``_``, so ``job_name`` is not the job's name.)"""
        out: dict[str, tuple[str, float]] = {}
        for text in list(self.pushes):
            for line in text.splitlines():
                m = PROM_LINE.match(line)
                if m and "_meshline_" in m["name"] and f'job_id="{job_id}"' in (m["labels"] or ""):
                    out[m["name"] + (m["labels"] or "")] = (m["name"], float(m["value"]))
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, job_server: str) -> Iterator[tuple[str, Pushgateway]]:
    """One standalone cluster for the module: its master and the Pushgateway its metrics go to."""
    gateway = Pushgateway()
    conf: dict[str, object] = {
        "metrics.reporter.promgateway.factory.class": (
            "org.apache.flink.metrics.prometheus.PrometheusPushGatewayReporterFactory"
        ),
        "metrics.reporter.promgateway.hostUrl": gateway.url,
        "metrics.reporter.promgateway.jobName": "meshline-test",
        "metrics.reporter.promgateway.interval": "1 SECONDS",
        # the REST API's copy of the TaskManagers' metrics, every second instead of every 10 s
        "metrics.fetcher.update-interval": 1000,
    }
    try:
        with flink_cluster(tmp_path_factory.mktemp("flink-metrics"), conf=conf) as master:
            yield master, gateway
    finally:
        gateway.close()


def test_a_batch_runs_counters_are_in_the_rest_api_by_their_names(meshline, tmp_path, cluster):
    master, _ = cluster
    src, out, dlq = tmp_path / "in.jsonl", tmp_path / "out", tmp_path / "dlq"
    _events(src)
    spec = tmp_path / "summary.yaml"
    spec.write_text(SUMMARY_SPEC.format(src=src, out=out, dlq=dlq))
    r = meshline(
        "run",
        str(spec),
        "--runner",
        "flink",
        "--flink-master",
        master,
        "--format",
        "json",
        timeout=RUN_TIMEOUT,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    reported = json.loads(r.stdout.strip().splitlines()[-1])["integrations"][0]["counters"]

    job = find_job(master, "summary")
    assert job is not None
    counters = meshline_counters(master, job)
    # The same numbers as tests/e2e/test_summary.py's direct run of this input.
    expected = {
        "source.in.in": 12,
        "source.in.decode_errors": 1,
        "trigger.tiered.in": 12,
        "trigger.tiered.matched": 5,
        "trigger.tiered.cesql_errors": 3,
        "trigger.tiered.out": 5,
        "trigger.big.in": 12,
        "trigger.big.matched": 2,
        "trigger.big.out": 1,
        "step.code.in": 2,
        "step.code.out": 1,
        "step.code.failed": 1,
        "target.out.in": 6,
        "target.out.delivered": 6,
        # counted by two transforms of one fused stage (routing, decoding): summed
        "target.rejects.in": 4,
        "target.rejects.delivered": 4,
    }
    assert {k: counters.get(k) for k in expected} == expected, counters
    assert counters == reported  # what Beam's metrics API gave `meshline run`, counter for counter

    # and `meshline run` printed the table from them (stderr; the JSON report is on stdout)
    table = _table(r.stderr)
    assert table[("source", "in")] == ["13", "12", "1"]
    assert table[("trigger", "tiered")] == ["12", "5", "(3", "cesql", "errors)", "5", "0"]
    assert table[("trigger", "big")] == ["12", "2", "1", "3"]
    assert table[("step", "code")] == ["2", "1", "1"]
    assert table[("target", "out")] == ["6", "6", "0"]
    assert table[("target", "rejects")] == ["4", "4", "0"]


def _post(url: str, body: dict[str, object]) -> int:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=120) as response:
        return response.status


STREAM_SPEC = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: webhook-metrics}}
spec:
  sources:
    - {{name: hook, type: http, config: {{port: {port}, path: /e, ack_timeout: 60s, idle_timeout: 15s}}}}
  targets:
    - {{name: out, type: file, config: {{path: "{out}", window: 2s}}}}
    - {{name: dlq, type: file, config: {{path: "{dlq}"}}}}
  triggers:
    - {{name: big, filters: [{{jq: ".data.i >= 6"}}], target: out}}
    - {{name: coded, filters: [{{jq: "(.data.code | tonumber) > 0"}}], target: out}}
  deadLetter: dlq
"""


def test_a_streams_counters_are_flink_metrics_and_prometheus_series(tmp_path, cluster):
    master, gateway = cluster
    port = free_port()
    out, dlq = tmp_path / "out", tmp_path / "dlq"
    spec = tmp_path / "spec.yaml"
    spec.write_text(STREAM_SPEC.format(port=port, out=out, dlq=dlq))
    proc = subprocess.Popen(
        dies_with_us([meshline_exe(), "run", str(spec), "--runner", "flink", "--flink-master", master]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # i = 0..9; "big": i >= 6 (4); "coded": an even i has a numeric code (5), an odd one makes
    # the filter raise (5 dead letters)
    expected = {
        "source.hook.in": 10,
        "trigger.big.matched": 4,
        "trigger.coded.matched": 5,
        "target.out.delivered": 9,
        "target.dlq.delivered": 5,
    }
    live: dict[str, int] = {}
    try:
        wait_listening(port, proc, 180)
        url = f"http://127.0.0.1:{port}/e"
        codes = [_post(url, {"i": i, "code": "7" if i % 2 == 0 else "x"}) for i in range(10)]
        assert codes == [202] * 10
        want = {flink_name(k): v for k, v in expected.items()}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = find_job(master, "webhook-metrics")
            live = live_counters(master, job) if job else {}
            if all(live.get(k) == v for k, v in want.items()):
                break
            time.sleep(1)
        _, err = proc.communicate(timeout=180)  # ends by itself: idle_timeout, then the drain
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    assert {k: live.get(k) for k in want} == want, live
    assert len(rows_in(out)) == 9 and len(rows_in(dlq)) == 5

    job = find_job(master, "webhook-metrics")
    assert job is not None
    counters = meshline_counters(master, job)
    assert {k: counters.get(k) for k in expected} == expected, counters
    assert counters["trigger.coded.matched"] + 5 == counters["trigger.coded.in"] == 10, counters

    series = gateway.series(job)
    prom: dict[str, float] = {}
    for name, value in series.values():
        prom[name] = prom.get(name, 0) + value
    for name, value in expected.items():
        assert prom.get(PROM_PREFIX + flink_name(name)) == value, sorted(series)
    labels = next(k for k in series if k.startswith(PROM_PREFIX + "meshline_source_hook_in{"))
    assert (
        'job_name="webhook_metrics"' in labels and "operator_name=" in labels and "subtask_index=" in labels
    )
