"""Nothing a run opens listens beyond 127.0.0.1 unless the integration asks (issue 17).

A webhook integration keeps each run up while the listening sockets of every process
of the run — ``meshline`` and all its descendants (Prism, the Flink job-server JVM, for
``[local]`` and for a standalone cluster) — are read from /proc. A webhook on
``host: 0.0.0.0`` is the positive control: the same check flags it, and other
machines reach it. The job port of Prism and of the Flink job
server is then dialled through a non-loopback address of this machine: refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshline.errors import RunnerError
from meshline.runners import listeners
from meshline.runners.listeners import Listener
from tests.e2e.flink_support import flink_cluster, flink_job_server
from tests.harness import free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not listeners.supported(), reason="reads the run's sockets from Linux's /proc"),
]
ROOT = Path(__file__).resolve().parents[2]
MESHLINE = Path(sys.executable).parent / "meshline"
STARTUP_S = 300.0


def _outside_address() -> str | None:
    """A non-loopback IPv4 address of this machine: what another machine would dial."""
    found: list[str] = []
    if shutil.which("ip"):
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
        found += [line.split()[3].split("/")[0] for line in out.splitlines() if " inet " in line]
    try:
        found += socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        pass
    return next((a for a in found if not a.startswith("127.")), None)


def unexpected(found: list[Listener], asked: set[int]) -> list[Listener]:
    """The listeners beyond loopback whose port the integration did not ask to expose."""
    return [x for x in found if not x.loopback and x.port not in asked]


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")]
    except OSError:
        return []


@dataclass
class Run:
    runner: str
    proc: subprocess.Popen[bytes]
    port: int  # the webhook's
    host: str

    def processes(self) -> list[int]:
        return listeners.process_tree(self.proc.pid)

    def listeners(self) -> list[Listener]:
        return listeners.listeners(self.processes())

    def job_port(self) -> int:
        """The job port of the runner server among the run's processes (--job_port / --job-port)."""
        for pid in self.processes():
            args = _cmdline(pid)
            for flag in ("--job_port", "--job-port"):
                if flag in args:
                    return int(args[args.index(flag) + 1])
        raise AssertionError(f"no runner server with a job port among {self.processes()}")


def _post(url: str) -> int:
    req = urllib.request.Request(url, data=b'{"n": 1}', headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return int(r.status)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def flink_ready() -> None:
    flink_job_server()


@contextlib.contextmanager
def _started(runner: str, host: str, request, tmp_path_factory) -> Iterator[Run]:
    """``meshline run`` of a webhook integration on ``runner`` (webhook on ``host``), up and serving."""
    if runner.startswith("flink"):
        request.getfixturevalue("flink_ready")
    tmp = tmp_path_factory.mktemp(f"exposure-{runner}")
    port = free_port()
    spec = tmp / "webhook.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: meshline.dev/v1alpha1
            kind: Integration
            metadata: {{name: exposure}}
            spec:
              sources:
                - name: hook
                  type: http
                  config: {{host: "{host}", port: {port}, path: /e, ack_timeout: 60s}}
              targets:
                - {{name: out, type: file, config: {{path: "{tmp / "out"}", window: 1s}}}}
              triggers:
                - {{name: all, target: out}}
            """
        )
    )
    with contextlib.ExitStack() as stack:
        args = ["--runner", runner]
        if runner == "flink-remote":  # a standalone cluster on 127.0.0.1; the job-server JVM runs here too
            args = [
                "--runner",
                "flink",
                "--flink-master",
                stack.enter_context(flink_cluster(tmp / "cluster")),
            ]
        stderr = stack.enter_context(open(tmp / "stderr.txt", "wb"))
        proc = subprocess.Popen(
            [str(MESHLINE), "run", str(spec), *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr
        )
        stack.callback(_stop, proc)
        deadline = time.monotonic() + STARTUP_S
        while True:  # 202: the job runs and has committed an event, so every server is up
            try:
                assert _post(f"http://127.0.0.1:{port}/e") == 202
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = (tmp / "stderr.txt").read_text()[-2000:]
                    pytest.fail(f"the {runner} run did not come up: {output}")
                time.sleep(0.5)
        yield Run(runner, proc, port, host)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Iterator[dict]:
    """The module's runs, one per (runner, host), each started on first use and stopped at the end.

    Not a parametrized module fixture: under ``--dist loadgroup`` the worker runs a module's
    tests in an order that interleaves the parameters, and pytest then stopped and started
    the same runner twice (measured: two Flink set-ups of 116 s and 97 s for one runner)."""
    with contextlib.ExitStack() as stack:
        yield {"stack": stack, "runs": {}, "factory": tmp_path_factory}


@pytest.fixture
def running(request, runs) -> Run:
    runner, host = request.param if isinstance(request.param, tuple) else (request.param, "127.0.0.1")
    key = (runner, host)
    if key not in runs["runs"]:
        runs["runs"][key] = runs["stack"].enter_context(_started(runner, host, request, runs["factory"]))
    run = runs["runs"][key]
    assert run.proc.poll() is None, f"the {runner} run ended early"
    return run


@pytest.mark.parametrize("running", ["direct", "prism", "flink", "flink-remote"], indirect=True)
def test_every_listener_of_a_run_is_on_loopback(running: Run) -> None:
    found = running.listeners()
    webhook = [x for x in found if x.port == running.port]
    assert [(x.pid, x.host) for x in webhook] == [(running.proc.pid, "127.0.0.1")], found
    if running.runner != "direct":
        servers = {x.pid for x in found} - {running.proc.pid}
        assert servers, f"no listener of the {running.runner} server seen: {found}"
        # the worker pool Beam starts in the meshline process for the runner to call
        assert len([x for x in found if x.pid == running.proc.pid]) >= 2, found
    assert unexpected(found, asked=set()) == [], "\n".join(map(str, found))


@pytest.mark.parametrize("running", ["prism", "flink", "flink-remote"], indirect=True)
def test_the_job_port_refuses_other_addresses(running: Run) -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback address to dial from")
    job_port = running.job_port()
    with socket.create_connection(("127.0.0.1", job_port), timeout=10):
        pass  # it is there, on loopback
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((outside, job_port), timeout=10).close()
    for x in running.listeners():  # and so is every other port of the run
        if x.protocol == "tcp":
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((outside, x.port), timeout=10).close()


@pytest.mark.parametrize("running", [("direct", "0.0.0.0")], indirect=True)
def test_the_check_flags_a_webhook_the_integration_exposed(running: Run) -> None:
    found = running.listeners()
    flagged = unexpected(found, asked=set())
    assert [(x.pid, x.host, x.port) for x in flagged] == [(running.proc.pid, "0.0.0.0", running.port)]
    assert unexpected(found, asked={running.port}) == []
    outside = _outside_address()
    if outside is not None:  # and other machines do reach it
        with socket.create_connection((outside, running.port), timeout=10):
            pass


_FAKE_PRISM = """\
#!{python}
# A runner server that listens on all interfaces, as a stock Prism does.
import os, signal, sys, time
from concurrent import futures
import grpc
signal.signal(signal.SIGINT, lambda *_: os._exit(0))
port = sys.argv[sys.argv.index("--job_port") + 1]
server = grpc.server(futures.ThreadPoolExecutor(2))
server.add_insecure_port("0.0.0.0:" + port)
server.start()
with open(os.environ["FAKE_PRISM_PID"], "w") as f:
    f.write(str(os.getpid()))
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_prism_binary_that_listens_everywhere_is_stopped_and_refused(tmp_path) -> None:
    fake = tmp_path / "prism"
    fake.write_text(_FAKE_PRISM.format(python=sys.executable))
    fake.chmod(0o755)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: fake}\nspec:\n"
        f"  sources:\n    - {{name: hook, type: http, config: {{port: {free_port()}, max_events: 1}}}}\n"
        f'  targets:\n    - {{name: out, type: file, config: {{path: "{tmp_path / "out"}"}}}}\n'
        "  triggers:\n    - {name: all, target: out}\n"
    )
    pid_file = tmp_path / "pid"
    env = dict(os.environ, FAKE_PRISM_PID=str(pid_file))
    cmd = [str(MESHLINE), "run", str(spec), "--runner", "prism", "--prism-location", str(fake)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    # gRPC binds "0.0.0.0" as the dual-stack [::]
    assert f"Prism ({fake}) listens on [::]:" in last or f"Prism ({fake}) listens on 0.0.0.0:" in last, (
        r.stderr
    )
    assert "beyond 127.0.0.1" in last and "--allow-exposed-runner" in last
    assert "Traceback" not in r.stderr
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), "the exposed server was left running"

    pid_file.unlink()
    r = subprocess.run(
        [*cmd, "--allow-exposed-runner"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    # let through, with a warning (the run then fails: this fake runs no jobs)
    assert "refusing" not in r.stderr
    assert f"warning: Prism ({fake}) listens on " in r.stderr and "(--allow-exposed-runner)" in r.stderr
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:  # it dies with meshline
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the runner server outlived meshline")


# --------------------------------------------------------------------------- the Java agent

_FAKE_GRPC = {
    "org/apache/beam/vendor/grpc/v9/io/grpc/netty/NettyServerBuilder.java": """\
package org.apache.beam.vendor.grpc.v9.io.grpc.netty;

public class NettyServerBuilder {
  public final String bound;
  private NettyServerBuilder(String bound) { this.bound = bound; }
  public static NettyServerBuilder forPort(int port) { return new NettyServerBuilder("any:" + port); }
  public static NettyServerBuilder forAddress(java.net.SocketAddress at) {
    return new NettyServerBuilder("" + at);
  }
}
""",
    "org/apache/beam/sdk/fn/server/ServerFactory.java": """\
package org.apache.beam.sdk.fn.server;

import org.apache.beam.vendor.grpc.v9.io.grpc.netty.NettyServerBuilder;

public class ServerFactory {
  public static String create(int port) { return NettyServerBuilder.forPort(port).bound; }
}
""",
    "org/apache/beam/other/Elsewhere.java": """\
package org.apache.beam.other;

import org.apache.beam.vendor.grpc.v9.io.grpc.netty.NettyServerBuilder;

public class Elsewhere {
  public static String create(int port) { return NettyServerBuilder.forPort(port).bound; }
}
""",
    "Main.java": """\
public class Main {
  public static void main(String[] args) {
    System.out.println(org.apache.beam.sdk.fn.server.ServerFactory.create(4321));
    System.out.println(org.apache.beam.other.Elsewhere.create(4321));
  }
}
""",
}


@pytest.mark.skipif(shutil.which("javac") is None, reason="the agent is compiled with javac")
def test_the_agent_binds_server_factories_to_loopback_for_any_vendored_grpc(tmp_path) -> None:
    from meshline.runners import flink_agent

    try:
        agent = flink_agent.find_agent(provision=False)
    except RunnerError:
        if shutil.which("mvn") is None:
            pytest.skip("the agent is not built and there is no mvn to fetch ASM")
        agent = flink_agent.find_agent()
    src, classes = tmp_path / "src", tmp_path / "classes"
    for name, text in _FAKE_GRPC.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    subprocess.run(
        ["javac", "-d", str(classes), *[str(src / n) for n in _FAKE_GRPC]], check=True, capture_output=True
    )
    without = subprocess.run(
        ["java", "-cp", str(classes), "Main"], capture_output=True, text=True, check=True
    )
    assert without.stdout.splitlines() == ["any:4321", "any:4321"]
    run = [*flink_agent.agent_options(agent), "-cp", str(classes), "Main"]
    with_agent = subprocess.run(["java", *run], capture_output=True, text=True, check=True)
    factory, elsewhere = with_agent.stdout.splitlines()
    assert factory.endswith("/127.0.0.1:4321"), (
        with_agent.stdout
    )  # InetSocketAddress: "localhost/127.0.0.1:4321"
    assert elsewhere == "any:4321"  # only Beam's server factories are rewritten
    assert with_agent.stderr == "", with_agent.stderr
