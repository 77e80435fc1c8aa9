"""No secret value in a pipeline proto, a pickled DoFn or a staged file — on every runner.

A webhook integration with Kafka SASL (SCRAM), an AMQP URL with a password,
Elasticsearch basic auth and webhook basic auth + bearer token, every secret a
``secret: true`` parameter but the token (``${env.…}``), runs as ``meshline
run`` on Prism and on Flink ``[local]``. While it runs the test asks the job
service (found among the run's listening ports) for the jobs (with their
pipeline options), their pipelines and the artifacts their environments name
(none for these LOOPBACK jobs; Flink's artifacts directory stays empty too) and
scans them, recursively decoded (leak_scan.py), for every form of every secret;
on the code before secrets travelled by reference the scan finds all five. The
run must really use the secrets: the webhook answers 401 without credentials and
202 with them, Kafka receives the events over SASL and RabbitMQ through the
password-protected user.

The Dataflow job built offline and ``meshline template``'s output get the same
scan; a secret given by value is refused there, and a Secret Manager version is
what the pickled pipeline holds (a worker resolves it: the last test).
"""

from __future__ import annotations

import base64
import json
import os
import secrets as random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.e2e.flink_support import flink_job_server
from tests.e2e.leak_scan import Scanner, listening_ports, needles
from tests.harness import free_port, wait_listening
from tests.servers.kafka import SCRAM_USER, kafka_broker
from tests.servers.rabbitmq import rabbitmq_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).parent / "meshline"


@pytest.fixture(scope="module")
def kafka():
    with kafka_broker() as broker:
        yield broker


@pytest.fixture(scope="module")
def rabbit():
    with rabbitmq_server() as broker:
        yield broker


def _spec(hook: int, hook2: int, kafka_sasl: str, topic: str, amqp: str, queue: str, es: int) -> str:
    return f"""\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: secret-leaks}}
spec:
  parameters:
    - {{name: kafka_password, secret: true, required: true}}
    - {{name: amqp_password, secret: true, required: true}}
    - {{name: es_password, secret: true, required: true}}
    - {{name: hook_password, secret: true, required: true}}
  sources:
    - name: hook
      type: http
      config:
        {{port: {hook}, path: /e, username: sender, password: "${{params.hook_password}}", ack_timeout: 120s}}
    - name: hook2
      type: http
      config: {{port: {hook2}, path: /e, token: "${{env.LEAK_HOOK_TOKEN}}", ack_timeout: 120s}}
  targets:
    - name: kafka
      type: kafka
      config:
        bootstrap_servers: "{kafka_sasl}"
        topic: {topic}
        security_protocol: SASL_PLAINTEXT
        sasl_mechanism: SCRAM-SHA-256
        username: {SCRAM_USER[0]}
        password: "${{params.kafka_password}}"
    - name: rabbit
      type: amqp
      config: {{url: "amqp://app:${{params.amqp_password}}@{amqp}/", exchange: "", routing_key: {queue}}}
    - name: search
      type: elasticsearch
      config:
        hosts: ["http://127.0.0.1:{es}"]
        index: leaks
        username: elastic
        password: "${{params.es_password}}"
  triggers:
    - {{name: to-kafka, sources: [hook, hook2], target: kafka}}
    - {{name: to-rabbit, sources: [hook, hook2], target: rabbit}}
    - {{name: to-search, sources: [hook], target: search, filters: [{{exact: {{type: never}}}}]}}
"""


def _post(url: str, body: dict, headers: dict[str, str]) -> int:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=180) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def _job_service(pid: int) -> list[tuple[int, object, list[str]]]:
    """``(port, channel, job infos)`` of every port of the run that answers the Beam job API."""
    import grpc
    from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc

    found = []
    for port in sorted(listening_ports(pid)):
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            jobs = beam_job_api_pb2_grpc.JobServiceStub(channel).GetJobs(
                beam_job_api_pb2.GetJobsRequest(), timeout=5
            )
        except grpc.RpcError:
            channel.close()
            continue
        found.append((port, channel, list(jobs.job_info)))
    return found


def _scan_job(scanner: Scanner, pid: int) -> int:
    """Scan every job's pipeline and every artifact its environments name; the number of jobs."""
    import grpc
    from apache_beam.portability.api import (
        beam_artifact_api_pb2,
        beam_artifact_api_pb2_grpc,
        beam_job_api_pb2,
        beam_job_api_pb2_grpc,
    )

    services = _job_service(pid)
    jobs = 0
    artifacts = []
    for port, channel, infos in services:
        stub = beam_job_api_pb2_grpc.JobServiceStub(channel)
        for info in infos:
            job_id = info.job_id
            scanner.message(info, f"GetJobs[{port}:{job_id}]")  # with the job's pipeline options
            pipeline = stub.GetPipeline(beam_job_api_pb2.GetJobPipelineRequest(job_id=job_id), timeout=30)
            scanner.message(pipeline.pipeline, f"GetPipeline[{port}:{job_id}]")
            jobs += 1
            for env_id, env in pipeline.pipeline.components.environments.items():
                artifacts += [(env_id, dep) for dep in env.dependencies]
    # whatever the job service staged (nothing for these LOOPBACK jobs, but the SDK may stage
    # more with other options): fetch each artifact back from any port that serves them
    for _, channel, _ in _job_service(pid) or []:
        retrieval = beam_artifact_api_pb2_grpc.ArtifactRetrievalServiceStub(channel)
        for env_id, dep in artifacts:
            try:
                chunks = retrieval.GetArtifact(
                    beam_artifact_api_pb2.GetArtifactRequest(artifact=dep), timeout=30
                )
                data = b"".join(c.data for c in chunks)
            except grpc.RpcError:
                continue
            scanner.bytes(data, f"artifact[{env_id}:{dep.type_urn}]")
    return jobs


def _run_and_scan(runner: str, kafka, rabbit, tmp_path: Path, beam_args: list[str]) -> None:
    import pika
    from confluent_kafka import Consumer

    values = {
        "kafka_password": SCRAM_USER[1],
        "amqp_password": "amqp-" + random.token_urlsafe(12),
        "es_password": "es-" + random.token_urlsafe(12),
        "hook_password": "hook-" + random.token_urlsafe(12),
        "hook_token": "tok-" + random.token_urlsafe(12),
    }
    rabbit.ctl("add_user", "app", values["amqp_password"])
    try:
        rabbit.ctl("set_permissions", "-p", "/", "app", ".*", ".*", ".*")
        admin = pika.BlockingConnection(pika.URLParameters(rabbit.url()))
        queue = f"leaks-{random.token_hex(4)}"
        admin.channel().queue_declare(queue, durable=True)
        topic = f"leaks-{random.token_hex(4)}"
        hook, hook2 = free_port(), free_port()
        spec = tmp_path / "leaks.yaml"
        spec.write_text(
            _spec(
                hook, hook2, kafka.sasl_bootstrap, topic, f"{rabbit.host}:{rabbit.port}", queue, free_port()
            )
        )
        params = [
            f"--param={name}={values[name]}"
            for name in ("kafka_password", "amqp_password", "es_password", "hook_password")
        ]
        env = {
            **os.environ,
            "LEAK_HOOK_TOKEN": values["hook_token"],
            "MESHLINE_CACHE": os.environ.get("MESHLINE_CACHE", ""),
        }
        if not env["MESHLINE_CACHE"]:
            env.pop("MESHLINE_CACHE")
        proc = subprocess.Popen(
            [str(EXE), "run", str(spec), "--runner", runner, *params, "--", *beam_args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            wait_listening(hook, proc, 240)
            wait_listening(hook2, proc, 60, "the second webhook")
            # the workers resolved the secrets: the webhooks check them, Kafka and RabbitMQ accept them
            url, url2 = f"http://127.0.0.1:{hook}/e", f"http://127.0.0.1:{hook2}/e"
            basic = base64.b64encode(f"sender:{values['hook_password']}".encode()).decode()
            assert _post(url, {"n": 0}, {}) == 401
            assert (
                _post(url, {"n": 0}, {"authorization": "Basic " + base64.b64encode(b"sender:no").decode()})
                == 401
            )
            assert _post(url2, {"n": 0}, {"authorization": "Bearer wrong"}) == 401
            assert _post(url, {"n": 1}, {"authorization": f"Basic {basic}"}) == 202
            assert _post(url2, {"n": 2}, {"authorization": f"Bearer {values['hook_token']}"}) == 202

            scanner = Scanner(needles(values, basic=("sender", values["hook_password"])))
            assert _scan_job(scanner, proc.pid) >= 1, "no job found on the run's listening ports"
            for d in beam_args:
                if d.startswith("--artifacts_dir="):
                    scanner.tree(Path(d.partition("=")[2]))
            assert scanner.scanned > 10
            assert scanner.found == [], sorted(set(scanner.found))

            consumer = Consumer(
                {
                    "bootstrap.servers": kafka.sasl_bootstrap,
                    "security.protocol": "SASL_PLAINTEXT",
                    "sasl.mechanism": "SCRAM-SHA-256",
                    "sasl.username": SCRAM_USER[0],
                    "sasl.password": SCRAM_USER[1],
                    "group.id": f"check-{topic}",
                    "auto.offset.reset": "earliest",
                }
            )
            consumer.subscribe([topic])
            got: list[int] = []
            deadline = time.monotonic() + 120
            try:
                while len(got) < 2 and time.monotonic() < deadline:
                    m = consumer.poll(1.0)
                    if m is not None and m.error() is None:
                        got.append(json.loads(m.value())["n"])
            finally:
                consumer.close()
            assert sorted(got) == [1, 2]
            ch = admin.channel()
            bodies: list[int] = []
            deadline = time.monotonic() + 60
            while len(bodies) < 2 and time.monotonic() < deadline:
                method, _props, body = ch.basic_get(queue, auto_ack=True)
                if method is None:
                    time.sleep(0.5)
                    continue
                bodies.append(json.loads(body)["n"])
            assert sorted(bodies) == [1, 2]
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
            out, err = proc.communicate()
            admin.close()
        text = (out + err).decode(errors="replace")
        for name, value in values.items():
            assert value not in text, f"{name} in meshline's output"
    finally:
        rabbit.ctl("delete_user", "app")


def test_no_secret_in_the_prism_job(kafka, rabbit, tmp_path):
    _run_and_scan("prism", kafka, rabbit, tmp_path, [])


def test_no_secret_in_the_flink_job(kafka, rabbit, tmp_path):
    flink_job_server()  # provisioned here, not skipped when the cache is empty
    _run_and_scan("flink", kafka, rabbit, tmp_path, [f"--artifacts_dir={tmp_path / 'artifacts'}"])


# --------------------------------------------------------------------------- Dataflow, offline

DATAFLOW_SPEC = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: df-leaks}
spec:
  parameters:
    - {name: kafka_password, secret: true, required: true}
    - {name: es_password, secret: true, required: true}
    - {name: amqp_password, secret: true, required: true}
    - {name: out, default: "gs://bucket/out"}
  sources:
    - name: orders
      type: kafka
      config:
        bootstrap_servers: "127.0.0.1:1"
        topics: orders
        sasl_mechanism: PLAIN
        username: reader
        password: "${params.kafka_password}"
  targets:
    - name: search
      type: elasticsearch
      config:
        hosts: ["http://127.0.0.1:1"]
        index: orders
        username: elastic
        password: "${params.es_password}"
    - name: rabbit
      type: amqp
      config: {url: "amqp://app:${params.amqp_password}@127.0.0.1:1/", exchange: "", routing_key: q}
  triggers:
    - {name: index, target: search}
    - {name: queue, target: rabbit}
"""
SM = {
    "kafka_password": "projects/p/secrets/kafka/versions/1",
    "es_password": "projects/p/secrets/es/versions/2",
    "amqp_password": "projects/p/secrets/amqp/versions/latest",
}


def _offline(tmp_path: Path) -> list[str]:
    for d in ("staging", "tmp"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    return [
        "--project=my-project",
        "--region=us-central1",
        f"--temp_location={tmp_path / 'tmp'}",
        f"--staging_location={tmp_path / 'staging'}",
        f"--template_location={tmp_path / 'job.json'}",
        "--dataflow_endpoint=http://localhost:1",
        "--no_auth",
    ]


def test_dataflow_refuses_secrets_by_value_and_stages_only_references(meshline, tmp_path):
    pytest.importorskip("apitools")
    spec = tmp_path / "df.yaml"
    spec.write_text(DATAFLOW_SPEC)
    values = {name: f"{name}-{random.token_urlsafe(10)}" for name in SM}
    by_value = [f"--param={k}={v}" for k, v in values.items()]
    env = {"MESHLINE_CACHE": str(tmp_path / "cache")}
    r = meshline("run", str(spec), "--runner", "dataflow", *by_value, "--", *_offline(tmp_path), env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "on Dataflow a secret must be a Secret Manager secret version" in r.stderr
    assert not (tmp_path / "job.json").exists()
    assert all(v not in r.stderr + r.stdout for v in values.values())

    refs = [f"--param={k}={v}" for k, v in SM.items()]
    r = meshline("run", str(spec), "--runner", "dataflow", *refs, "--", *_offline(tmp_path), env=env)
    assert r.returncode == 0, r.stderr
    scanner = Scanner(needles(values))
    scanner.bytes((tmp_path / "job.json").read_bytes(), "job.json")
    scanner.tree(tmp_path / "staging")
    assert (tmp_path / "staging" / "pipeline.pb").is_file() and scanner.scanned > 10
    assert scanner.found == [], sorted(set(scanner.found))
    # what the workers get: the Secret Manager versions, to read at start-up
    found = Scanner(needles(SM))
    found.tree(tmp_path / "staging")
    assert {name for _, name in found.found} == set(SM)


def test_a_dataflow_worker_reads_secret_manager_when_it_unpickles(tmp_path, monkeypatch):
    """What a Dataflow worker does with the staged pipeline: resolve each version (fake client)."""
    pytest.importorskip("apitools")
    from apache_beam.internal import pickler
    from apache_beam.portability.api import beam_runner_api_pb2

    from meshline import secrets
    from meshline.cli import main

    spec = tmp_path / "df.yaml"
    spec.write_text(DATAFLOW_SPEC)
    monkeypatch.setenv("MESHLINE_CACHE", str(tmp_path / "cache"))
    refs = [f"--param={k}={v}" for k, v in SM.items()]
    assert main(["run", str(spec), "--runner", "dataflow", *refs, "--", *_offline(tmp_path)]) == 0
    pipeline = beam_runner_api_pb2.Pipeline()
    pipeline.ParseFromString((tmp_path / "staging" / "pipeline.pb").read_bytes())
    monkeypatch.setattr(secrets, "_STORE", {})  # a worker: nothing of this process
    seen: list[str] = []

    class FakeSecretManager:
        def access_secret_version(self, name):
            seen.append(name)
            return SimpleNamespace(payload=SimpleNamespace(data=f"value-of:{name}".encode()))

    monkeypatch.setattr(secrets, "_secret_manager_client", FakeSecretManager)
    configs = []
    for transform in pipeline.components.transforms.values():
        if transform.spec.urn != "beam:transform:pardo:v1":
            continue
        payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
        fn = pickler.loads(payload.do_fn.payload)
        configs += [
            v
            for v in vars(fn[0] if isinstance(fn, tuple) else fn).values()
            if hasattr(v, "password") or hasattr(v, "url")
        ]
    assert set(seen) == set(SM.values())
    resolved = {str(getattr(c, "password", None) or getattr(c, "url", "")) for c in configs}
    assert f"value-of:{SM['es_password']}" in resolved
    assert f"amqp://app:value-of:{SM['amqp_password']}@127.0.0.1:1/" in resolved


def test_flex_template_takes_no_secret_written_in_the_file(meshline, tmp_path):
    cache = {"MESHLINE_CACHE": str(tmp_path / "cache")}
    spec = tmp_path / "df.yaml"
    spec.write_text(DATAFLOW_SPEC)
    r = meshline("template", str(spec), "-o", str(tmp_path / "tpl"), env=cache)
    assert r.returncode == 0, r.stderr
    metadata = json.loads((tmp_path / "tpl" / "metadata.json").read_text())
    assert {p["name"] for p in metadata["parameters"] if p.get("customMetadata", {}).get("secret")} == set(SM)
    # a Flex Template carries the file as it is: a secret written in it is refused in one line
    leaks = {
        "default": DATAFLOW_SPEC.replace(
            "{name: es_password, secret: true, required: true}",
            "{name: es_password, secret: true, default: es-written-in-file}",
        ),
        "literal": DATAFLOW_SPEC.replace('password: "${params.es_password}"', "password: es-written-in-file"),
        "env": DATAFLOW_SPEC.replace('password: "${params.es_password}"', 'password: "${env.ES_PW}"'),
    }
    for kind, text in leaks.items():
        leaky = tmp_path / f"{kind}.yaml"
        leaky.write_text(text)
        out = tmp_path / f"tpl-{kind}"
        r = meshline("template", str(leaky), "-o", str(out), env=cache)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "es-written-in-file" not in r.stderr + r.stdout
        assert "a Flex Template carries the file" in r.stderr and not (out / "integration.yaml").exists()
