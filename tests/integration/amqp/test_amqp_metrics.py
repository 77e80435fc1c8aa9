"""``--metrics-port`` on an AMQP → file integration on Prism: the queue's depth and the counts."""

from __future__ import annotations

import signal

import orjson
import pytest

from tests.e2e.observe_support import sample, scrape, wait_until
from tests.harness import free_port, rows_in, running
from tests.integration.amqp.support import Rabbit

pytestmark = pytest.mark.integration

N = 200


def test_amqp_queue_depth_falls_to_zero_and_counts_match(rabbitmq, tmp_path):
    mq = Rabbit(rabbitmq.url())
    queue = mq.new_queue()
    mq.publish(queue, [(orjson.dumps({"n": i}), {}) for i in range(N)])
    out = tmp_path / "out"
    spec = tmp_path / "amqp.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: amqp-watched}}
spec:
  sources:
    - {{name: in, type: amqp, config: {{url: "{rabbitmq.url()}", queue: {queue}}}}}
  targets:
    - {{name: out, type: file, config: {{path: "{out}", window: 1s}}}}
  triggers:
    - {{name: all, target: out}}
""")
    metrics = free_port()
    url = f"http://127.0.0.1:{metrics}/metrics"
    depths: list[float] = []

    def drained() -> bool:
        try:
            families = scrape(url)
        except OSError:
            return False
        for s in families.get("meshline_source_backlog", []):
            if s.labels.get("kind") == "amqp_ready" and s.labels.get("queue") == queue:
                depths.append(float(s.value))
        delivered = sample(families, "meshline_events_total", stage="target", name="out", outcome="delivered")
        return delivered == N and bool(depths) and depths[-1] == 0 and mq.depth(queue) == 0

    try:
        with running("run", str(spec), "--runner", "prism", "--metrics-port", str(metrics)) as proc:
            wait_until(drained, 180, f"{N} messages delivered and the queue's depth at 0")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
    finally:
        mq.close()
    assert "amqp://" not in err or "***" in err or rabbitmq.url() not in err
    assert len(rows_in(out)) == N, err[-3000:]
