"""A real Apache Kafka broker (KRaft, one node) on 127.0.0.1, assembled from Maven Central.

First use resolves ``org.apache.kafka:kafka_2.13`` and its runtime dependencies
with ``mvn dependency:copy-dependencies`` into ``~/.cache/meshline/kafka/VERSION/libs``
(≈ 45 MB, reused afterwards). Each session formats a fresh storage directory
(``kafka.tools.StorageTool``) and starts ``kafka.Kafka`` with three listeners on
free ports:

- ``PLAINTEXT`` — the plain bootstrap address;
- ``SASL_PLAINTEXT`` with ``PLAIN`` and ``SCRAM-SHA-256`` — ``PLAIN`` accepts the
  Event Hubs login (user ``$ConnectionString``, password :data:`EVENTHUBS_CONNECTION_STRING`)
  and :data:`PLAIN_USER`; SCRAM accepts :data:`SCRAM_USER` (created at format time);
- ``CONTROLLER`` — KRaft's own.

The credentials are test-only fixtures for a throw-away broker on loopback.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import dies_with_us, free_port, one_at_a_time

VERSION = os.environ.get("MESHLINE_KAFKA_VERSION", "4.4.0")
CACHE = Path(os.environ.get("MESHLINE_CACHE", Path.home() / ".cache" / "meshline")) / "kafka"

# A connection string shaped like Event Hubs' (fake key: only this loopback broker accepts it).
EVENTHUBS_CONNECTION_STRING = (
    "Endpoint=sb://meshline-test.servicebus.windows.net/;"
    "SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=dGVzdC1vbmx5LWtleQ=="
)
PLAIN_USER = ("meshline", "test-only-plain")
SCRAM_USER = ("scrammer", "test-only-scram")

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.meshline.test</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>2.0.17</version></dependency>
  </dependencies>
</project>
"""


@dataclass(frozen=True)
class KafkaBroker:
    bootstrap: str  # PLAINTEXT listener, host:port
    sasl_bootstrap: str  # SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256)
    log: Path


@one_at_a_time("kafka")
def libs(version: str = VERSION) -> Path:
    """The broker's jars, resolved from Maven Central on first use."""
    home = CACHE / version
    lib = home / "libs"
    marker = home / ".complete"
    if marker.exists():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is needed once to fetch the Kafka broker jars from Maven Central")
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="meshline-kafka-pom-") as work:
        (Path(work) / "pom.xml").write_text(_POM.format(version=version))
        staging = home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        r = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if r.returncode != 0:
            raise RuntimeError(f"fetching Kafka {version} failed:\n{(r.stdout + r.stderr)[-3000:]}")
        shutil.rmtree(lib, ignore_errors=True)
        staging.rename(lib)
    marker.write_text(version)
    return lib


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return os.path.join(home, "bin", "java")
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("Java 17+ is needed to run the Kafka test broker")
    return java


def _properties(data: Path, plain: int, sasl: int, controller: int) -> str:
    user, password = PLAIN_USER
    jaas_plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{user}="{password}" '
        f'user_$ConnectionString="{EVENTHUBS_CONNECTION_STRING}";'
    )
    jaas_scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller}",
            f"listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl},"
            f"CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
            "CONTROLLER:PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas_plain}",
            f"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config={jaas_scram}",
            f"log.dirs={data}",
            "num.partitions=3",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.flush.interval.messages=100000000",
            "",
        ]
    )


def _wait_ready(proc: subprocess.Popen, bootstrap: str, log: Path, deadline: float) -> None:
    from confluent_kafka.admin import AdminClient

    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"the Kafka broker exited with {proc.returncode}:\n{tail}")
        host, port = bootstrap.rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                pass
            admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
            md = admin.list_topics(timeout=2)
            if md.brokers:
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Kafka broker did not start in time; see {log}")
        time.sleep(0.3)


def _cluster_id() -> str:
    while True:  # Kafka's own rule: a cluster id must not start with '-' (an option to StorageTool)
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _start(root: Path, jvm: list[str], timeout: float) -> tuple[subprocess.Popen, Any, KafkaBroker]:
    """Format a fresh storage directory under ``root`` and start the broker on free ports."""
    plain, sasl, controller = free_port(), free_port(), free_port()
    data = root / "data"
    shutil.rmtree(data, ignore_errors=True)
    props = root / "server.properties"
    props.write_text(_properties(data, plain, sasl, controller))
    log = root / "broker.log"
    scram_user, scram_password = SCRAM_USER
    fmt = subprocess.run(
        [
            *jvm,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _cluster_id(),
            "-c",
            str(props),
            "--add-scram",
            f"SCRAM-SHA-256=[name={scram_user},password={scram_password}]",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if fmt.returncode != 0:
        raise RuntimeError(f"formatting Kafka storage failed:\n{(fmt.stdout + fmt.stderr)[-3000:]}")
    out = open(log, "wb")  # noqa: SIM115 - closed by the caller
    proc = subprocess.Popen(
        dies_with_us([*jvm, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "kafka.Kafka", str(props)]),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_ready(proc, f"127.0.0.1:{plain}", log, time.monotonic() + timeout)
    except BaseException:
        _stop(proc, out)
        raise
    return proc, out, KafkaBroker(f"127.0.0.1:{plain}", f"127.0.0.1:{sasl}", log)


def _stop(proc: subprocess.Popen, out: Any) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    out.close()


@contextmanager
def kafka_broker(timeout: float = 120, attempts: int = 3) -> Iterator[KafkaBroker]:
    """Start a single-node KRaft broker; yields its addresses; stops it afterwards."""
    jvm = [_java(), "-Xms256m", "-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
    jvm += ["-cp", str(libs() / "*")]
    with tempfile.TemporaryDirectory(prefix="meshline-kafka-") as work:
        for attempt in range(1, attempts + 1):
            try:
                proc, out, broker = _start(Path(work), jvm, timeout)
                break
            except RuntimeError:
                if attempt == attempts:  # e.g. a free port taken by someone else meanwhile
                    raise
        try:
            yield broker
        finally:
            _stop(proc, out)


if __name__ == "__main__":  # start one by hand: python -m tests.servers.kafka
    with kafka_broker() as b:
        print(f"bootstrap {b.bootstrap}  sasl {b.sasl_bootstrap}  log {b.log}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
