"""The Flink runner as a user runs it: ``meshline run … --runner flink`` on [local] and on a cluster.

Batch (the quickstart) on the embedded MiniCluster and on a standalone cluster;
streaming (an endless Pub/Sub source on the emulator: delivered, then
acknowledged after Flink checkpoints); and the one-line failures.

The first run provisions Beam's Flink job server with ``mvn`` (about 150 MB,
then cached under ``$MESHLINE_CACHE/flink/``) and, for the cluster test, a
Flink distribution from PyPI (``$MESHLINE_CACHE/flink-dist/``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from meshline.runners import flink
from meshline.spec.model import Execution
from tests.e2e.flink_support import flink_cluster, flink_job_server
from tests.harness import rows_in
from tests.integration.pubsub_support import PROJECT, PubSub
from tests.servers.pubsub import emulator_binary, pubsub_emulator

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "pipelines" / "quickstart.yaml"
RUN_TIMEOUT = 240


@pytest.fixture(scope="module")
def job_server() -> str:
    return flink_job_server()


def _assert_quickstart_outputs(r, out: Path) -> None:
    assert r.returncode == 0, r.stderr[-3000:]
    big = rows_in(out / "big-orders")
    assert big and all(float(e["data"]["amount"]) > 100 and "total" in e["data"] for e in big)
    eu = rows_in(out / "eu-orders", "**/*.parquet")
    assert eu and all(row["type"] == "com.example.order.eu" for row in eu)
    rejects = rows_in(out / "dead-letters")
    stages = sorted(e["meshlineerrorstage"] for e in rejects)
    assert stages == ["decode", "decode", "filter"], rejects
    assert "cancelled: " in r.stdout  # the LOOPBACK worker runs in the CLI's process
    assert "trigger" in r.stderr and "big-orders" in r.stderr  # the summary table
    assert "running quickstart on flink" in r.stderr
    assert not list(out.rglob(".meshline-tmp*"))


def _pubsub_available() -> bool:
    try:
        emulator_binary()
    except RuntimeError:
        return False
    return True


def test_streaming_pubsub_on_embedded_flink_loses_nothing_and_acknowledges(tmp_path, job_server):
    """Pub/Sub source in streaming: messages published before the run and while it runs each
    land in the target and are acknowledged (bundle finalization after a Flink checkpoint);
    once the source has been idle for its ``idle_timeout`` the run drains and ends by itself
    (meshline.runners.flink_drain), with status 0.

    Before ``--finish_bundle_before_checkpointing`` (meshline.runners.flink) a run now and then
    delivered nothing at all; that is a failure now, as is losing a message or not acknowledging
    what was delivered.
    """
    if not _pubsub_available():
        pytest.skip("the Pub/Sub emulator is not installed")
    with pubsub_emulator() as host:
        ps = PubSub(host)
        topic, sub = ps.new_subscription(ack_deadline=10)
        ids = set(ps.publish(topic, [(orjson.dumps({"n": i}), {}) for i in range(20)]))
        out = tmp_path / "out"
        spec = tmp_path / "it.yaml"
        spec.write_text(
            "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: flink-stream}\nspec:\n"
            "  sources:\n    - name: in\n      type: google.pubsub\n"
            f'      config: {{project: {PROJECT}, subscription: {sub}, endpoint_url: "{host}", batch: 10,'
            " idle_timeout: 15s}\n"
            f'  targets:\n    - {{name: out, type: file, config: {{path: "{out}/events", window: 2s}}}}\n'
            f'    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}\n'
            "  triggers:\n    - {name: all, target: out}\n  deadLetter: dlq\n"
        )
        exe = Path(sys.executable).parent / "meshline"
        proc = subprocess.Popen(
            [str(exe), "run", str(spec), "--runner", "flink"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        def delivered() -> set[str]:
            return {e["id"] for e in rows_in(out / "events", "*.jsonl")}

        got: set[str] = set()
        try:
            deadline = time.monotonic() + 90  # the first events land after about 15 s here
            while time.monotonic() < deadline and not got and proc.poll() is None:
                time.sleep(1)
                got = delivered()
            # the rest arrives while the run is going: read by resumed (deferred) source bundles
            ids |= set(ps.publish(topic, [(orjson.dumps({"n": i}), {}) for i in range(20, 40)]))
            _, err_bytes = proc.communicate(timeout=180)  # ends by itself once the source is idle
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        err = err_bytes.decode(errors="replace")
        tail = err[-2000:]
        assert proc.returncode == 0 and "draining the Flink job" in err, tail
        assert "Traceback" not in err, tail
        got = delivered()
        time.sleep(11)  # past the ack deadline: anything not acknowledged would be redelivered now
        redelivered = set(ps.drain(sub))
        assert ids <= got | redelivered, "acknowledged but never delivered"
        assert got == ids, tail
        assert not redelivered, "delivered but not acknowledged"


def _one_line_error(r) -> str:
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_quickstart_on_embedded_flink(meshline, tmp_path, job_server):
    out = tmp_path / "out"
    r = meshline(
        "run",
        str(QUICKSTART),
        "--runner",
        "flink",
        "--flink-master",
        "[local]",
        "--param",
        f"output={out}",
        timeout=RUN_TIMEOUT,
    )
    _assert_quickstart_outputs(r, out)


def test_quickstart_on_a_standalone_cluster(meshline, tmp_path, job_server):
    out = tmp_path / "out"
    with flink_cluster(tmp_path / "cluster") as master:
        r = meshline(
            "run",
            str(QUICKSTART),
            "--runner",
            "flink",
            "--flink-master",
            master,
            "--param",
            f"output={out}",
            timeout=RUN_TIMEOUT,
        )
    _assert_quickstart_outputs(r, out)


def test_unreachable_master_fails_fast_in_one_line(meshline, tmp_path):
    # Fast: without the REST probe, Beam's job server retries for minutes; the deadline is the bound.
    r = meshline(
        "run",
        str(QUICKSTART),
        "--runner",
        "flink",
        "--flink-master",
        "127.0.0.1:1",
        "--param",
        f"output={tmp_path}",
        timeout=45,
    )
    line = _one_line_error(r)
    assert "127.0.0.1:1" in line and "refused" in line, line
    assert not list(tmp_path.iterdir())


@pytest.fixture
def fake_flink_rest() -> Iterator[str]:
    """An HTTP server that answers /config like a Flink 1.20 JobManager does."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"flink-version": "1.20.1", "refresh-interval": 3000}).encode()
            self.send_response(200 if self.path == "/config" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_cluster_of_another_flink_version_is_refused_in_one_line(meshline, tmp_path, fake_flink_rest):
    r = meshline(
        "run",
        str(QUICKSTART),
        "--runner",
        "flink",
        "--flink-master",
        fake_flink_rest,
        "--param",
        f"output={tmp_path}",
        timeout=60,
    )
    line = _one_line_error(r)
    assert "Flink 1.20.1" in line and "--flink_version=1.20" in line, line


def test_job_server_jar_that_is_not_a_jar(meshline, tmp_path):
    bogus = tmp_path / "job-server.jar"
    bogus.write_text("not a jar")
    r = meshline(
        "run",
        str(QUICKSTART),
        "--runner",
        "flink",
        "--param",
        f"output={tmp_path / 'out'}",
        env={"MESHLINE_FLINK_JOB_SERVER_JAR": str(bogus)},
        timeout=60,
    )
    line = _one_line_error(r)
    assert "MESHLINE_FLINK_JOB_SERVER_JAR" in line and str(bogus) in line, line


def _settings(**kw: object) -> SimpleNamespace:
    base: dict[str, object] = {
        "flink_master": "[local]",
        "streaming": False,
        "beam_args": [],
        "execution": None,
    }
    base.update(kw)
    return SimpleNamespace(**base)


def test_beam_options_for_flink_and_the_users_own_win():
    args = flink.flink_args(_settings(), "/x/job-server.jar")
    assert "--flink_master=[local]" in args and "--flink_job_server_jar=/x/job-server.jar" in args
    assert "--environment_type=LOOPBACK" in args and "--parallelism=1" in args
    assert f"--flink_version={flink.DEFAULT_FLINK_VERSION}" in args
    assert "--streaming" not in args and not any(a.startswith("--checkpointing_interval") for a in args)

    assert "--finish_bundle_before_checkpointing" not in args

    args = flink.flink_args(_settings(streaming=True), "/x/j.jar")
    assert "--streaming" in args and "--checkpointing_interval=500" in args
    assert "--max_bundle_time_mills=100" in args and "--max_bundle_size=1000" in args
    assert "--finish_bundle_before_checkpointing" in args

    # spec.execution changes them; a batch run keeps Beam's own bundles unless it says otherwise
    paced = Execution(bundle_time=0.05, checkpoint_interval=2.0)
    args = flink.flink_args(_settings(streaming=True, execution=paced), "/x/j.jar")
    assert "--max_bundle_time_mills=50" in args and "--checkpointing_interval=2000" in args
    assert not any(a.startswith("--max_bundle") for a in flink.flink_args(_settings(), "/x/j.jar"))
    args = flink.flink_args(_settings(execution=Execution(bundle_size=10)), "/x/j.jar")
    assert "--max_bundle_size=10" in args

    user = ["--parallelism", "2", "--checkpointing_interval=700", "--max_bundle_time_mills", "5"]
    args = flink.flink_args(_settings(streaming=True, beam_args=user, execution=paced), "/x/j.jar")
    assert not any(
        a.startswith(("--parallelism", "--checkpointing_interval", "--max_bundle_time_mills")) for a in args
    )
    assert "--streaming" in args


def test_the_pubsub_archive_pipeline_runs_unchanged_on_embedded_flink(meshline, tmp_path, job_server):
    """pipelines/pubsub-archive.yaml (also run on Prism and built as a Flex Template in
    tests/integration/test_pipelines_on_runners.py), unchanged, on Flink: every message lands in
    its minute-window file and is acknowledged; its ``idle`` stop ends the run (status 0), the
    drain closing the open minute windows (meshline.runners.flink_drain)."""
    if not _pubsub_available():
        pytest.skip("the Pub/Sub emulator is not installed")
    pipeline = Path(__file__).resolve().parents[2] / "pipelines" / "pubsub-archive.yaml"
    with pubsub_emulator() as host:
        ps = PubSub(host)
        topic, sub = ps.new_subscription(ack_deadline=10)
        ids = set(ps.publish(topic, [(orjson.dumps({"n": i}), {"shop": "eu"}) for i in range(30)]))
        out = tmp_path / "archive"
        params = {"pubsub_project": PROJECT, "subscription": sub, "endpoint": host, "output": str(out)}
        params = {**params, "idle": "5s"}
        r = meshline(
            "run",
            str(pipeline),
            "--runner",
            "flink",
            *[a for k, v in params.items() for a in ("--param", f"{k}={v}")],
            timeout=RUN_TIMEOUT,
        )
        tail = r.stderr[-2000:]
        assert r.returncode == 0 and "draining the Flink job" in r.stderr, tail
        rows = rows_in(out, "**/part-*.jsonl")
        assert sorted(e["id"] for e in rows) == sorted(ids), tail
        assert all(e["shop"] == "eu" for e in rows)
        time.sleep(11)  # past the ack deadline
        assert ps.drain(sub) == [], "delivered but not acknowledged"
