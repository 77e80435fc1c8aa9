"""``--metrics-port`` on an SQS → file integration on Prism: the queue's depth and the counts.

Messages are sent before the run starts; the endpoint reports the queue's visible messages
(``meshline_source_backlog{kind="sqs_visible"}``, SQS's approximate count, asked at most every
5 s), which falls to 0 once every message was read, committed and deleted.
"""

from __future__ import annotations

import signal

import orjson
import pytest

from tests.e2e.observe_support import sample, wait_drained
from tests.harness import free_port, rows_in, running

pytestmark = pytest.mark.integration

N = 120


def test_sqs_depth_falls_to_zero_and_counts_match(aws, tmp_path):
    queue = aws.queue()
    aws.send(queue, [{"MessageBody": orjson.dumps({"n": i}).decode()} for i in range(N)])
    out = tmp_path / "out"
    spec = tmp_path / "sqs.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: sqs-watched}}
spec:
  sources:
    - name: in
      type: aws.sqs
      config: {{queue_url: "{queue}", endpoint_url: "{aws.endpoint}", region: us-east-1, wait_time: 1s}}
  targets:
    - {{name: out, type: file, config: {{path: "{out}", window: 1s}}}}
  triggers:
    - {{name: all, target: out}}
""")
    metrics = free_port()
    url = f"http://127.0.0.1:{metrics}/metrics"
    with running("run", str(spec), "--runner", "prism", "--metrics-port", str(metrics)) as proc:
        families, depths = wait_drained(
            url, target="out", count=N, kind="sqs_visible", source="in", also=lambda: aws.depth(queue) == 0
        )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert depths and depths[-1] == 0
    assert sample(families, "meshline_events_total", stage="source", name="in", outcome="in") == N
    assert len(rows_in(out)) == N, err[-3000:]
