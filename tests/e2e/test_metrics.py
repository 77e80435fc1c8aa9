"""``meshline run --metrics-port``: a Prometheus endpoint while a streaming integration runs.

A webhook integration on Prism and on Flink ``[local]`` gets orders, some poisoned so that
its step fails; the endpoint is scraped twice and parsed with the official Prometheus
client's parser: the counts per stage are the events sent and dead-lettered, and the
delivery-latency histogram has one observation per delivered event.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.e2e.flink_support import flink_job_server
from tests.e2e.observe_support import TOKEN, get, post, sample, scrape, wait_until, watched_integration
from tests.harness import free_port, rows_in, running, wait_listening

pytestmark = pytest.mark.e2e

SENT = 30
POISONED = {4, 11, 17, 25}


def _delivered(families: dict, target: str) -> float | None:
    return sample(families, "meshline_events_total", stage="target", name=target, outcome="delivered")


# flink: [local], whose SDK worker runs in the CLI's process as Prism's does
@pytest.mark.parametrize("runner", ["prism", "flink"])
def test_metrics_count_what_a_streaming_run_did(tmp_path: Path, runner: str):
    if runner == "flink":
        flink_job_server()  # Java and the job server, or a failure saying which is missing
    port, metrics = free_port(), free_port()
    spec = watched_integration(tmp_path, port)
    url = f"http://127.0.0.1:{metrics}/metrics"
    with running("run", str(spec), "--runner", runner, "--metrics-port", str(metrics)) as proc:
        wait_listening(port, proc, 300)
        for i in range(SENT // 2):
            assert post(port, i, poisoned=i in POISONED) == 202
        first = scrape(url)  # a 202 means committed: what it counted so far is in
        assert sample(first, "meshline_events_total", stage="source", name="hook", outcome="in") == SENT // 2
        for i in range(SENT // 2, SENT):
            assert post(port, i, poisoned=i in POISONED) == 202
        wait_until(lambda: _delivered(scrape(url), "priced") == SENT - len(POISONED), 60, "all delivered")
        second = scrape(url)
        # the endpoint answers its loopback address only, and only GET
        with socket.create_connection(("127.0.0.1", metrics)) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: evil.example:80\r\n\r\n")
            assert s.recv(200).startswith(b"HTTP/1.1 403")
        text = get(url)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)

    def events(stage: str, name: str, outcome: str) -> float | None:
        return sample(second, "meshline_events_total", stage=stage, name=name, outcome=outcome)

    bad = len(POISONED)
    assert events("source", "hook", "in") == SENT
    assert events("trigger", "orders", "matched") == SENT
    assert events("trigger", "orders", "dead_lettered") == bad
    assert events("step", "price", "in") == SENT
    assert events("step", "price", "dead_lettered") == bad
    assert events("target", "priced", "delivered") == SENT - bad
    assert events("target", "rejects", "delivered") == bad
    assert sample(second, "meshline_delivery_latency_seconds_count", target="priced") == SENT - bad
    assert sample(second, "meshline_delivery_latency_seconds_count", target="rejects") == bad
    inf = sample(second, "meshline_delivery_latency_seconds_bucket", target="priced", le="+Inf")
    assert inf == SENT - bad
    assert (sample(second, "meshline_delivery_latency_seconds_sum", target="priced") or 0) > 0
    assert sample(second, "process_resident_memory_bytes") is not None
    # counters only grow between the scrapes
    assert events("source", "hook", "in") >= sample(
        first, "meshline_events_total", stage="source", name="hook", outcome="in"
    )
    assert TOKEN not in text and TOKEN not in err
    assert f"metrics on http://127.0.0.1:{metrics}/metrics" in err
    assert len(rows_in(tmp_path / "out" / "priced")) == SENT - bad
    assert len(rows_in(tmp_path / "out" / "rejects")) == bad


def test_a_port_in_use_is_refused_in_one_line(meshline, tmp_path: Path):
    port = free_port()
    spec = watched_integration(tmp_path, port)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        r = meshline("run", str(spec), "--metrics-port", str(busy))
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{busy}" in lines[0], r.stderr
