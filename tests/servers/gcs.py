"""fake-gcs-server (Go) on 127.0.0.1, publishing object notifications to the Pub/Sub emulator.

Provisioned on first use with ``go install github.com/fsouza/fake-gcs-server@VERSION``
(GOPATH, module and build caches under ``$MESHLINE_CACHE/go``); the binary is kept
in ``$MESHLINE_CACHE/fake-gcs-server/VERSION/`` and reused. ``MESHLINE_FAKE_GCS``
names an existing binary instead.

fake-gcs-server's ``-event.*`` flags publish every object event of the server
(one topic for all buckets) as a GCS ``JSON_API_V1`` notification. Its
per-bucket ``notificationConfigs`` API exists too, but it expects the topic as
``projects/P/topics/T`` where real GCS (and google-cloud-storage's
``BucketNotification``) writes ``//pubsub.googleapis.com/projects/P/topics/T``,
so configs made by the real client never publish: tests use the flags.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import dies_with_us, free_port, one_at_a_time

VERSION = "v1.55.1"
MODULE = "github.com/fsouza/fake-gcs-server"


def _cache() -> Path:
    base = os.environ.get("MESHLINE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "meshline")
    return Path(base)


@one_at_a_time("fake-gcs-server")
def fake_gcs_binary() -> str:
    """The fake-gcs-server binary, built with ``go install`` on first use."""
    explicit = os.environ.get("MESHLINE_FAKE_GCS")
    if explicit:
        return explicit
    home = _cache() / "fake-gcs-server" / VERSION
    binary = home / "fake-gcs-server"
    if os.access(binary, os.X_OK):
        return str(binary)
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None
    )
    if go is None:
        raise RuntimeError(f"fake-gcs-server is not cached in {home} and Go is not installed to build it")
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions build it once
        if os.access(binary, os.X_OK):
            return str(binary)
        gobase = _cache() / "go"
        staging = Path(tempfile.mkdtemp(prefix="bin-", dir=home))
        env = dict(
            os.environ,
            GOPATH=str(gobase),
            GOMODCACHE=str(gobase / "mod"),
            GOCACHE=str(gobase / "cache"),
            GOBIN=str(staging),
            GOFLAGS="-modcacherw",
        )
        r = subprocess.run(
            [go, "install", f"{MODULE}@{VERSION}"], env=env, capture_output=True, text=True, timeout=1200
        )
        if r.returncode != 0:
            raise RuntimeError(f"go install {MODULE}@{VERSION} failed:\n{r.stderr[-2000:]}")
        os.replace(staging / "fake-gcs-server", binary)
        shutil.rmtree(staging, ignore_errors=True)
    return str(binary)


def _wait_port(proc: subprocess.Popen, port: int, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start in time") from None
            time.sleep(0.2)


@contextmanager
def fake_gcs_server(
    *,
    pubsub_host: str | None = None,
    project: str = "meshline-test",
    topic: str | None = None,
    events: str = "finalize,delete,metadataUpdate",
    timeout: float = 60,
) -> Iterator[str]:
    """Start fake-gcs-server (memory backend, plain HTTP); yields ``http://127.0.0.1:PORT``.

    With ``pubsub_host`` and ``topic`` (which must exist), object events are
    published there. The process is stopped afterwards.
    """
    binary = fake_gcs_binary()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        binary,
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-backend",
        "memory",
        "-public-host",
        f"127.0.0.1:{port}",
        "-external-url",
        url,
        "-log-level",
        "warn",
    ]
    env = dict(os.environ)
    if pubsub_host and topic:
        args += ["-event.pubsub-project-id", project, "-event.pubsub-topic", topic, "-event.list", events]
        env["PUBSUB_EMULATOR_HOST"] = pubsub_host
    with tempfile.TemporaryDirectory(prefix="meshline-gcs-") as data:
        log_path = Path(data) / "server.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                dies_with_us(args),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=data,
                start_new_session=True,
            )
            try:
                _wait_port(proc, port, timeout, "fake-gcs-server", log_path)
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
