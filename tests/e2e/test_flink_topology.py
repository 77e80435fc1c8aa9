"""The Flink production topology, without Kubernetes: a job jar, ``flink run``, an EXTERNAL worker pool.

What the Flink Kubernetes Operator runs for ``meshline deploy``, on this machine: a
standalone JobManager and TaskManager (:mod:`tests.e2e.flink_support`), Beam's Python
worker pool beside the TaskManager (``python -m meshline.runners.worker_pool``, this
virtualenv's Python, on 127.0.0.1), and the integration packaged by
``meshline run FILE --runner flink -- --output_executable_path=JOB.jar`` and submitted
with Flink's own CLI. Kafka in, filter and jq, Kafka out; records carry their number,
so delivery is checked by id: all of them (a), none lost across a TaskManager's SIGKILL
with few duplicates (b), and across an upgrade through a savepoint (c).

One cluster and one worker pool serve the module; each test cancels its job.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from confluent_kafka.admin import AdminClient, NewTopic

from tests.e2e.flink_support import FlinkCluster, flink_job_server, running_cluster
from tests.harness import dies_with_us, free_port, wait_listening
from tests.integration.kafka.support import drain, fully_committed, new_topic, partitions, produce
from tests.servers.kafka import KafkaBroker, kafka_broker

pytestmark = pytest.mark.e2e

#: The checkpoint interval baked into the jars: short enough for quick commits, long enough
#: that "two intervals' worth" of records is a bound worth asserting at the recovery test's rate.
CHECKPOINT_MS = 2000
CLUSTER_CONF: dict[str, object] = {
    # A lost TaskManager restarts the job from its last checkpoint, a few times at most.
    "restart-strategy.type": "fixed-delay",
    "restart-strategy.fixed-delay.attempts": 10,
    "restart-strategy.fixed-delay.delay": "2 s",
    # Notice a SIGKILLed TaskManager in seconds, not after the default 50 s heartbeat timeout.
    "heartbeat.interval": 1000,
    "heartbeat.timeout": 6000,
}


@dataclass
class Topology:
    """The module's cluster, its worker pool's port and the broker."""

    cluster: FlinkCluster
    pool_port: int
    kafka: KafkaBroker
    workdir: Path
    start_pool: Callable[[], subprocess.Popen[bytes]]
    pools: list[subprocess.Popen[bytes]]


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    flink_job_server()
    workdir = tmp_path_factory.mktemp("topology")
    port = free_port()
    pools: list[subprocess.Popen[bytes]] = []

    def start_pool() -> subprocess.Popen[bytes]:
        """The worker pool a TaskManager's SDK harnesses come from, as the Operator's sidecar would run it."""
        log = open(workdir / f"worker-pool-{len(pools) + 1}.log", "wb")  # noqa: SIM115 - the child's now
        cmd = [sys.executable, "-m", "meshline.runners.worker_pool", f"--service_port={port}"]
        proc = subprocess.Popen(
            dies_with_us(cmd), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        pools.append(proc)
        wait_listening(port, proc, 60, what="the worker pool")
        return proc

    with kafka_broker() as broker, running_cluster(workdir / "cluster", conf=CLUSTER_CONF) as cluster:
        try:
            start_pool()
            yield Topology(cluster, port, broker, workdir, start_pool, pools)
        finally:
            for proc in pools:
                _stop_group(proc)


# --------------------------------------------------------------------------- helpers


def _spec(
    path: Path, bootstrap: str, topic: str, group: str, version: int = 1, extra: str | None = None
) -> Path:
    """Kafka → filter (n % 10 != 3) → jq (v = version) → Kafka; ``extra``: a second trigger's topic.

    The step, target and trigger names are the same in every version: Beam's transform names,
    hence Flink's operator ids, come from them.
    """

    def kafka_target(name: str, out: str) -> dict[str, Any]:
        return {"name": name, "type": "kafka", "config": {"bootstrap_servers": bootstrap, "topic": out}}

    targets = [kafka_target("out", f"{topic}-out"), kafka_target("dlq", f"{topic}-dlq")]
    triggers: list[dict[str, Any]] = [
        {"name": "all", "filters": [{"jq": ".data.n % 10 != 3"}], "steps": ["mark"], "target": "out"}
    ]
    if extra:
        targets.append(kafka_target("copy", extra))
        triggers.append({"name": "copies", "target": "copy"})
    source = {"bootstrap_servers": bootstrap, "topics": topic, "group_id": group, "start": "earliest"}
    spec = {
        "apiVersion": "meshline.dev/v1alpha1",
        "kind": "Integration",
        "metadata": {"name": "topology"},
        "spec": {
            "sources": [{"name": "in", "type": "kafka", "config": source}],
            "transformations": [
                {"name": "mark", "type": "jq", "config": {"program": f".data.v = {version}"}}
            ],
            "targets": targets,
            "triggers": triggers,
            "deadLetter": "dlq",
        },
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _build_jar(meshline: Any, spec: Path, jar: Path, pool_port: int) -> float:
    """``meshline run --runner flink -- --output_executable_path=JAR``; returns the seconds it took."""
    started = time.monotonic()
    r = meshline(
        "run",
        str(spec),
        "--runner",
        "flink",
        "--",
        f"--output_executable_path={jar}",
        f"--environment_config=127.0.0.1:{pool_port}",
        f"--checkpointing_interval={CHECKPOINT_MS}",
        timeout=240,
    )
    took = time.monotonic() - started
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"wrote the Flink job jar {jar}" in r.stderr, r.stderr[-2000:]
    print(f"built {jar.name} in {took:.1f}s ({jar.stat().st_size / 1e6:.0f} MB)")
    return took


def _submit(cluster: FlinkCluster, jar: Path, *options: str) -> str:
    """``flink run --detached [OPTIONS] JAR``; the job's id."""
    started = time.monotonic()
    r = cluster.flink("run", "--detached", "-m", cluster.master, *options, str(jar))
    found = re.search(r"JobID ([0-9a-f]{32})", r.stdout)
    assert r.returncode == 0 and found, f"flink run failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    print(f"flink run {' '.join(options)} took {time.monotonic() - started:.1f}s: job {found.group(1)}")
    return found.group(1)


def _rest(cluster: FlinkCluster, path: str, method: str = "GET") -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"http://{cluster.master}{path}", method=method)
    with opener.open(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def _state(cluster: FlinkCluster, job: str) -> str:
    return str(_rest(cluster, f"/jobs/{job}")["state"])


def _cancel(cluster: FlinkCluster, job: str) -> None:
    """Cancel ``job`` unless it has ended; wait until it has (the next test wants its slot)."""
    try:
        if _state(cluster, job) in ("FINISHED", "CANCELED", "FAILED"):
            return
        _rest(cluster, f"/jobs/{job}?mode=cancel", "PATCH")
        deadline = time.monotonic() + 60
        while _state(cluster, job) not in ("CANCELED", "FAILED") and time.monotonic() < deadline:
            time.sleep(0.5)
    except OSError:
        pass


def _numbers(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    """(n, v) of every record on ``topic`` (v 0 where no jq step marked it), duplicates included."""
    return [
        (d["n"], d.get("v", 0)) for d in (orjson.loads(m.value()) for m in drain(bootstrap, topic, wait=1.5))
    ]


def _await_delivery(
    topo: Topology, job: str, topic: str, expect: set[int], timeout: float = 150
) -> list[tuple[int, int]]:
    """Poll the output topic until every number in ``expect`` is there; returns what it holds."""
    deadline = time.monotonic() + timeout
    got: list[tuple[int, int]] = []
    while time.monotonic() < deadline:
        got = _numbers(topo.kafka.bootstrap, topic)
        if expect <= {n for n, _ in got}:
            return got
        state = _state(topo.cluster, job)
        assert state in ("RUNNING", "CREATED", "INITIALIZING", "RESTARTING", "FAILING"), (
            f"job {job} is {state}"
        )
        time.sleep(2)
    missing = expect - {n for n, _ in got}
    pytest.fail(
        f"{len(missing)} of {len(expect)} records not delivered in {timeout}s (e.g. {sorted(missing)[:5]})"
    )


def _await_committed(topo: Topology, topic: str, group: str, timeout: float = 60) -> None:
    """Offsets are committed after a checkpoint completes: wait until the group is at the end."""
    deadline = time.monotonic() + timeout
    left = fully_committed(topo.kafka.bootstrap, topic, group)
    while left and time.monotonic() < deadline:
        time.sleep(1)
        left = fully_committed(topo.kafka.bootstrap, topic, group)
    assert left == {}, f"delivered but not committed: {left}"


def _records(numbers: range) -> list[tuple[bytes, bytes, None]]:
    return [(str(n).encode(), orjson.dumps({"n": n}), None) for n in numbers]


def _expected(numbers: range) -> set[int]:
    return {n for n in numbers if n % 10 != 3}


# --------------------------------------------------------------------------- the tests


def test_kafka_filter_jq_kafka_from_a_job_jar_submitted_by_flink_run(topology: Topology, meshline, tmp_path):
    bootstrap = topology.kafka.bootstrap
    topic, group = new_topic(bootstrap, 3, "topo-a"), "g-topo-a"
    produce(bootstrap, topic, _records(range(20_000)))
    jar = tmp_path / "job.jar"
    _build_jar(meshline, _spec(tmp_path / "it.yaml", bootstrap, topic, group), jar, topology.pool_port)
    started = time.monotonic()
    job = _submit(topology.cluster, jar)
    try:
        got = _await_delivery(topology, job, f"{topic}-out", _expected(range(20_000)))
        print(f"20,000 records through the job in {time.monotonic() - started:.1f}s after submission")
        _await_committed(topology, topic, group)
    finally:
        _cancel(topology.cluster, job)
    counts = Counter(n for n, _ in got)
    assert set(counts) == _expected(range(20_000))  # the filter's known subset: 18,000, n % 10 != 3
    assert all(v == 1 for _, v in got)  # the jq step ran
    assert max(counts.values()) == 1, "one clean run delivers each record once"
    assert drain(bootstrap, f"{topic}-dlq", wait=0.5) == []


class _SteadyProducer(threading.Thread):
    """Produces ``numbers`` at ``rate`` records a second, so that a kill lands mid-stream."""

    def __init__(self, bootstrap: str, topic: str, numbers: range, rate: int):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.numbers, self.rate = bootstrap, topic, numbers, rate
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            step = max(1, self.rate // 10)
            started = time.monotonic()
            for i in range(0, len(self.numbers), step):
                chunk = self.numbers[i : i + step]
                produce(self.bootstrap, self.topic, _records(chunk), **{"linger.ms": 5})
                self.sent += len(chunk)
                time.sleep(max(0.0, started + self.sent / self.rate - time.monotonic()))
        except BaseException as e:  # reported by the test
            self.error = e


class _Tail:
    """Counts the records of a topic as they arrive (``drain`` waits for a pause that a steady stream
    never makes)."""

    def __init__(self, bootstrap: str, topic: str):
        from confluent_kafka import Consumer, TopicPartition

        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "tail", "enable.auto.commit": False}
        )
        self._consumer.assign([TopicPartition(topic, p, 0) for p in partitions(bootstrap, topic)])
        self._seen = 0

    def __enter__(self) -> _Tail:
        return self

    def __exit__(self, *exc: object) -> None:
        self._consumer.close()

    def count(self) -> int:
        """Records on the topic so far (duplicates included), read for at most half a second: a
        steady stream never lets "until nothing comes" end."""
        until = time.monotonic() + 0.5
        while time.monotonic() < until:
            batch = self._consumer.consume(num_messages=10_000, timeout=0.1)
            if not batch:
                break
            self._seen += sum(1 for m in batch if m.error() is None)
        return self._seen


def _failures(cluster: FlinkCluster, job: str) -> list[str]:
    """The job's failures Flink recorded (each one restarted it), first line of each."""
    history = _rest(cluster, f"/jobs/{job}/exceptions")["exceptionHistory"]["entries"]
    return [
        str(e.get("exceptionName", "")) + ": " + str(e.get("stacktrace", "")).split("\n")[0][-160:]
        for e in history
    ]


def test_taskmanager_killed_mid_run_restarts_from_the_last_checkpoint(topology: Topology, meshline, tmp_path):
    """SIGKILL the TaskManager and its worker pool mid-stream; a new pair takes over.

    400 records a second with checkpoints every 2 s: a restart replays what was delivered after
    the last completed checkpoint, so duplicates stay under two intervals' worth (1,600 records),
    and nothing is lost. The job keeps up (it moves about 2,000 a second here), so the bound holds.
    """
    bootstrap, cluster = topology.kafka.bootstrap, topology.cluster
    topic, group = new_topic(bootstrap, 3, "topo-b"), "g-topo-b"
    rate, total = 400, 10_000
    jar = tmp_path / "job.jar"
    _build_jar(meshline, _spec(tmp_path / "it.yaml", bootstrap, topic, group), jar, topology.pool_port)
    job = _submit(cluster, jar)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # Before the job writes to it: the tail below reads its partitions from the start.
    admin.create_topics([NewTopic(f"{topic}-out", 3, 1)])[f"{topic}-out"].result(30)
    # A warm-up first: the job takes tens of seconds to start (slots, the worker pool's SDK
    # harness), and a backlog built meanwhile would come out in one burst of bundles, all of
    # it before the kill. Once the warm-up is out the job keeps up with the steady stream.
    warm = 400
    produce(bootstrap, topic, _records(range(warm)))
    producer = _SteadyProducer(bootstrap, topic, range(warm, total), rate)
    try:
        deadline = time.monotonic() + 150
        at_kill = 0
        with _Tail(bootstrap, f"{topic}-out") as out:
            while out.count() < len(_expected(range(warm))):
                assert time.monotonic() < deadline, f"the job delivered {out.count()} of the warm-up"
                time.sleep(0.5)
            producer.start()
            deadline = time.monotonic() + 90
            while at_kill < 3_000:  # mid-stream: about a fifth of the records are out
                assert time.monotonic() < deadline and producer.error is None, "the job delivered too little"
                time.sleep(0.3)
                at_kill = out.count()
        killed_at = time.monotonic()
        sent_at_kill = warm + producer.sent
        assert sent_at_kill < total, f"the kill came after the last record was produced ({at_kill} out)"
        cluster.kill_taskmanagers()
        os.killpg(topology.pools[-1].pid, signal.SIGKILL)
        topology.pools[-1].wait(timeout=10)
        print(
            f"killed the TaskManager and the worker pool with {at_kill} records out, {sent_at_kill} produced"
        )
        time.sleep(3)  # a node's replacement is not instant either
        topology.start_pool()
        cluster.start("taskmanager")
        cluster.wait_ready()
        producer.join(timeout=120)
        assert producer.error is None, producer.error
        got = _await_delivery(topology, job, f"{topic}-out", _expected(range(total)), timeout=150)
        recovered = time.monotonic() - killed_at
        _await_committed(topology, topic, group)
        failures = _failures(cluster, job)
    finally:
        _cancel(cluster, job)
    counts = Counter(n for n, _ in got)
    duplicates = sum(c - 1 for c in counts.values())
    lost = _expected(range(total)) - set(counts)
    bound = 2 * rate * CHECKPOINT_MS // 1000
    summary = (
        f"recovery: {len(counts)} of {len(_expected(range(total)))} records delivered, {len(lost)} lost, "
        f"{duplicates} duplicates (bound {bound}), {len(failures)} restart(s), killed with {at_kill} out "
        f"and {sent_at_kill} produced, "
        f"all delivered {recovered:.1f}s after the kill"
    )
    print(summary, *failures, sep="\n  ")
    assert not lost, summary
    assert failures, summary  # the job did restart (and was not, say, finished before the kill)
    assert duplicates < bound, summary


def test_upgrade_through_a_savepoint_continues_where_the_old_version_stopped(
    topology: Topology, meshline, tmp_path
):
    """Stop v1 with a savepoint; v2 (another trigger, another jq program) resumes from it.

    Every record is delivered by one version or the other (at least once, none lost); v2's new
    trigger sees only the records produced after the upgrade; no record is read again from
    the start (v2 marks what it delivers, and none of the first 10,000 carries its mark).
    """
    bootstrap, cluster = topology.kafka.bootstrap, topology.cluster
    topic, group = new_topic(bootstrap, 3, "topo-c"), "g-topo-c"
    copies = f"{topic}-copies"
    produce(bootstrap, topic, _records(range(10_000)))
    v1, v2 = tmp_path / "v1.jar", tmp_path / "v2.jar"
    _build_jar(meshline, _spec(tmp_path / "v1.yaml", bootstrap, topic, group), v1, topology.pool_port)
    job = _submit(cluster, v1)
    jobs = [job]
    try:
        _await_delivery(topology, job, f"{topic}-out", _expected(range(10_000)))
        started = time.monotonic()
        r = cluster.flink("stop", "--savepointPath", str(tmp_path / "savepoints"), job)
        found = re.search(r"Savepoint completed\. Path: (\S+)", r.stdout)
        assert r.returncode == 0 and found, f"flink stop failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        savepoint = found.group(1)
        print(f"flink stop --savepointPath took {time.monotonic() - started:.1f}s: {savepoint}")
        spec2 = _spec(tmp_path / "v2.yaml", bootstrap, topic, group, version=2, extra=copies)
        _build_jar(meshline, spec2, v2, topology.pool_port)
        job = _submit(cluster, v2, "--fromSavepoint", savepoint)
        jobs.append(job)
        produce(bootstrap, topic, _records(range(10_000, 20_000)))
        got = _await_delivery(topology, job, f"{topic}-out", _expected(range(20_000)))
        copied = _await_delivery(topology, job, copies, set(range(10_000, 20_000)))
        _await_committed(topology, topic, group)
        restored = _rest(cluster, f"/jobs/{job}/checkpoints")["latest"].get("restored")
    finally:
        for j in jobs:
            _cancel(cluster, j)
    counts = Counter(n for n, _ in got)
    by_v2 = {n for n, v in got if v == 2}
    duplicates = sum(c - 1 for c in counts.values())
    summary = (
        f"upgrade: {len(counts)} of 18000 delivered, {duplicates} duplicates, {len(by_v2)} by v2 "
        f"(lowest {min(by_v2, default=None)}), {len(copied)} copies (lowest {min(n for n, _ in copied)}); "
        f"restored from {restored and restored.get('external_path')}"
    )
    print(summary)
    assert set(counts) == _expected(range(20_000)), summary
    assert {n for n, _ in copied} == set(range(10_000, 20_000)), summary
    assert min(by_v2) >= 10_000, f"v2 read old records again: {summary}"
    assert restored is not None and restored.get("is_savepoint"), summary
