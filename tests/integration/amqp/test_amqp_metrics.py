"""``--metrics-port`` on an AMQP → file integration on Prism: the queue's depth and the counts."""

from __future__ import annotations

import signal

import orjson
import pytest

from tests.e2e.observe_support import wait_drained
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
    try:
        with running("run", str(spec), "--runner", "prism", "--metrics-port", str(metrics)) as proc:
            _, depths = wait_drained(
                url, target="out", count=N, kind="amqp_ready", queue=queue, also=lambda: mq.depth(queue) == 0
            )
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
    finally:
        mq.close()
    assert depths and depths[-1] == 0
    assert rabbitmq.url() not in err  # the URL's password is masked wherever the URL is said
    assert len(rows_in(out)) == N, err[-3000:]
