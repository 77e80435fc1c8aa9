"""A Flink streaming run whose sources all end finishes by itself, having delivered and acknowledged all.

Beam keeps Flink's sources alive while checkpointing is on, so before
:mod:`meshline.runners.flink_drain` such a run went on until Ctrl-C. Now ``meshline run``
must exit 0 by itself (the subprocess deadline is the only bound here: no timing is
asserted), with every message in the target and acknowledged: nothing redelivered on
Pub/Sub once the ack deadline has passed, every Kafka partition committed to its end.
Pub/Sub on the embedded MiniCluster, Kafka on a standalone cluster.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from tests.e2e.flink_support import flink_cluster, flink_job_server
from tests.harness import rows_in
from tests.integration.kafka.support import fully_committed, new_topic, produce
from tests.integration.pubsub_support import PROJECT, PubSub
from tests.servers.kafka import kafka_broker
from tests.servers.pubsub import emulator_binary, pubsub_emulator

pytestmark = pytest.mark.e2e
RUN_TIMEOUT = 300
DRAINING = "every source has ended; draining the Flink job"


@pytest.fixture(scope="module")
def job_server() -> str:
    return flink_job_server()


def _spec(tmp_path: Path, source: str, out: Path) -> Path:
    spec = tmp_path / "it.yaml"
    spec.write_text(
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: flink-drain}\nspec:\n"
        f"  sources:\n    - {source}\n"
        f'  targets:\n    - {{name: out, type: file, config: {{path: "{out}/events", window: 2s}}}}\n'
        f'    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}\n'
        "  triggers:\n    - {name: all, target: out}\n  deadLetter: dlq\n"
    )
    return spec


def _ended_by_itself(r) -> None:
    tail = r.stderr[-3000:]
    assert r.returncode == 0, tail
    assert DRAINING in r.stderr and "done in" in r.stderr, tail
    assert "Traceback" not in r.stderr, tail


def test_pubsub_run_whose_source_ends_drains_and_exits_on_embedded_flink(meshline, tmp_path, job_server):
    try:
        emulator_binary()
    except RuntimeError:
        pytest.skip("the Pub/Sub emulator is not installed")
    with pubsub_emulator() as host:
        ps = PubSub(host)
        topic, sub = ps.new_subscription(ack_deadline=10)
        ids = set(ps.publish(topic, [(orjson.dumps({"n": i}), {}) for i in range(30)]))
        out = tmp_path / "out"
        source = (
            "{name: in, type: google.pubsub, config: "
            f'{{project: {PROJECT}, subscription: {sub}, endpoint_url: "{host}", batch: 10, '
            "idle_timeout: 5s}}"
        )
        r = meshline("run", str(_spec(tmp_path, source, out)), "--runner", "flink", timeout=RUN_TIMEOUT)
        _ended_by_itself(r)
        got = [e["id"] for e in rows_in(out / "events", "*.jsonl")]
        assert set(got) == ids, r.stderr[-2000:]
        assert not rows_in(out / "dlq")
        time.sleep(11)  # past the ack deadline: anything not acknowledged would be redelivered now
        assert ps.drain(sub) == [], "delivered but not acknowledged"


def test_kafka_run_whose_source_ends_drains_and_exits_on_a_standalone_cluster(meshline, tmp_path, job_server):
    with kafka_broker() as broker:
        topic = new_topic(broker.bootstrap, partitions=2)
        produce(broker.bootstrap, topic, [(None, orjson.dumps({"n": i}), None) for i in range(40)])
        out = tmp_path / "out"
        group = "meshline-drain-test"
        source = (
            "{name: in, type: kafka, config: "
            f"{{bootstrap_servers: '{broker.bootstrap}', topics: {topic}, group_id: {group}, "
            "batch: 10, idle_timeout: 5s}}"
        )
        spec = _spec(tmp_path, source, out)
        with flink_cluster(tmp_path / "cluster") as master:
            r = meshline("run", str(spec), "--runner", "flink", "--flink-master", master, timeout=RUN_TIMEOUT)
        _ended_by_itself(r)
        got = rows_in(out / "events", "*.jsonl")
        assert sorted(e["data"]["n"] for e in got) == list(range(40)), r.stderr[-3000:]
        assert not rows_in(out / "dlq")
        left = fully_committed(broker.bootstrap, topic, group)
        assert left == {}, f"delivered but not committed: {left}\n{r.stderr[-3000:]}"
