"""``--metrics-port`` on a Kafka → file integration on Prism: counts and consumer lag per partition.

Records are produced before the run starts, so the source has a backlog the endpoint reports
per partition (``meshline_source_backlog{kind="kafka_lag"}``); once everything is read the lag
of every partition falls to 0, and the counts equal the records produced.
"""

from __future__ import annotations

import signal

import orjson
import pytest

from tests.e2e.observe_support import sample, wait_drained
from tests.harness import free_port, rows_in, running
from tests.integration.kafka.support import new_topic, produce

pytestmark = pytest.mark.integration

N = 3000


def _lags(families: dict, topic: str) -> dict[str, float]:
    return {
        s.labels["partition"]: s.value
        for s in families.get("meshline_source_backlog", [])
        if s.labels.get("kind") == "kafka_lag" and s.labels.get("topic") == topic
    }


def test_kafka_lag_falls_to_zero_and_counts_match(kafka, tmp_path):
    topic = new_topic(kafka.bootstrap, partitions=3, prefix="lag")
    records = (
        (
            str(i).encode(),
            orjson.dumps(
                {"specversion": "1.0", "id": f"r{i}", "source": "/p", "type": "t", "data": {"i": i}}
            ),
            [("content-type", b"application/cloudevents+json")],
        )
        for i in range(N)
    )
    produce(kafka.bootstrap, topic, records)
    out = tmp_path / "out"
    spec = tmp_path / "lag.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: lagging}}
spec:
  sources:
    - name: k
      type: kafka
      config: {{bootstrap_servers: "{kafka.bootstrap}", topics: {topic}, batch: 100}}
  targets:
    - {{name: out, type: file, config: {{path: "{out}", window: 1s}}}}
  triggers:
    - {{name: all, target: out}}
""")
    metrics = free_port()
    url = f"http://127.0.0.1:{metrics}/metrics"
    with running("run", str(spec), "--runner", "prism", "--metrics-port", str(metrics)) as proc:
        families, _ = wait_drained(url, target="out", count=N, kind="kafka_lag", rows=3, topic=topic)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert _lags(families, topic) == {"0": 0.0, "1": 0.0, "2": 0.0}
    assert sample(families, "meshline_events_total", stage="source", name="k", outcome="in") == N
    assert sample(families, "meshline_events_total", stage="target", name="out", outcome="delivered") == N
    assert sample(families, "meshline_delivery_latency_seconds_count", target="out") == N
    assert len(rows_in(out)) == N, err[-3000:]
