"""What a run listens on: reading it from /proc, refusing a runner server beyond loopback, the worker pool."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

from meshline.errors import RunnerError
from meshline.runners import RunnerSettings, listeners, make_runner
from meshline.runners.loopback import ALLOW_FLAG, ServerWatch

linux = pytest.mark.skipif(not listeners.supported(), reason="reads Linux's /proc")

# A stand-in runner server: listens on HOST:PORT (TCP); told so on stdin, also on LATE_HOST:0.
_SERVER = """\
import socket, sys, time
host, port, late = sys.argv[1], int(sys.argv[2]), sys.argv[3]
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family)
s.bind((host, port))
s.listen()
print(s.getsockname()[1], flush=True)
if late and sys.stdin.readline():
    t = socket.socket(socket.AF_INET6 if ":" in late else socket.AF_INET)
    t.bind((late, 0))
    t.listen()
time.sleep(120)
"""


def _server(host: str, late: str = "") -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, host, "0", late],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@linux
def test_listeners_reads_each_address_family_and_says_which_are_loopback() -> None:
    opened = []
    wanted = {("tcp", "0.0.0.0"): False, ("tcp", "127.0.0.1"): True, ("udp", "0.0.0.0"): False}
    if _has_ipv6():
        wanted |= {("tcp", "::"): False, ("tcp", "::1"): True}
    try:
        found = {}
        for (protocol, host), _ in wanted.items():
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM)
            opened.append(s)
            s.bind((host, 0))
            if protocol == "tcp":
                s.listen()
            found[(protocol, s.getsockname()[1])] = (host, wanted[(protocol, host)])
        # a connected client socket is not a listener
        client = socket.create_connection(("127.0.0.1", opened[1].getsockname()[1]))
        opened.append(client)
        mine = {(x.protocol, x.port): x for x in listeners.listeners([os.getpid()])}
        for key, (host, loopback) in found.items():
            assert key in mine, f"{key[0]} {host}:{key[1]} not seen"
            assert mine[key].pid == os.getpid()
            assert mine[key].host == host and mine[key].loopback is loopback, mine[key]
        assert ("tcp", client.getsockname()[1]) not in mine
        exposed = {
            (x.protocol, x.host) for x in listeners.exposed([os.getpid()]) if (x.protocol, x.port) in found
        }
        assert exposed == {k for k, loopback in wanted.items() if not loopback}
    finally:
        for s in opened:
            s.close()


def test_ipv4_mapped_loopback_is_loopback_and_any_is_not() -> None:
    assert listeners.Listener(1, "tcp", "::ffff:127.0.0.1", 80).loopback
    assert listeners.Listener(1, "tcp", "127.0.0.2", 80).loopback
    assert not listeners.Listener(1, "tcp", "::ffff:10.0.0.1", 80).loopback
    assert not listeners.Listener(1, "tcp", "::", 80).loopback
    assert str(listeners.Listener(1, "tcp", "::", 80)) == "tcp [::]:80"


@linux
def test_process_tree_and_listeners_follow_children() -> None:
    proc, port = _server("0.0.0.0")
    try:
        assert proc.pid in listeners.process_tree(os.getpid())
        found = [x for x in listeners.listeners(listeners.process_tree(os.getpid())) if x.port == port]
        assert [(x.pid, x.host) for x in found] == [(proc.pid, "0.0.0.0")]
    finally:
        _stop(proc)
    assert proc.pid not in listeners.process_tree(os.getpid())


@linux
def test_a_server_on_all_interfaces_is_stopped_and_refused_in_one_line() -> None:
    proc, port = _server("0.0.0.0")
    try:
        watch = ServerWatch("the test server", port, stop=proc.kill)
        with pytest.raises(RunnerError) as e:
            watch.check()
        message = str(e.value)
        assert "\n" not in message
        assert f"the test server listens on 0.0.0.0:{port}, beyond 127.0.0.1" in message
        assert ALLOW_FLAG in message
        assert proc.wait(timeout=10) is not None
    finally:
        _stop(proc)


@linux
def test_a_loopback_server_passes_and_a_late_exposed_listener_kills_it(capfd) -> None:
    proc, port = _server("127.0.0.1", late="0.0.0.0")
    try:
        watch = ServerWatch("the test server", port, stop=proc.kill, interval=0.2)
        watch.check()  # only 127.0.0.1 so far
        assert proc.stdin is not None
        proc.stdin.write("now\n")
        proc.stdin.flush()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the watch did not stop a server that opened a listener on 0.0.0.0")
        assert "the test server listens on 0.0.0.0:" in capfd.readouterr().err
    finally:
        _stop(proc)


@linux
def test_a_server_that_serves_no_port_of_ours_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # this process, not a child: not a server the run started
        stopped = []
        watch = ServerWatch("the test server", s.getsockname()[1], stop=lambda: stopped.append(True))
        with pytest.raises(RunnerError, match=f"cannot check where the test server listens.*{ALLOW_FLAG}"):
            watch.check()
        assert stopped == [True]


@linux
def test_the_loopback_worker_pool_listens_on_127_0_0_1_only() -> None:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.portability import python_urns
    from apache_beam.portability.api import beam_runner_api_pb2, endpoints_pb2

    from meshline.runners.loopback import start_loopback_workers

    before = {x.port for x in listeners.listeners([os.getpid()])}
    proto = beam_runner_api_pb2.Pipeline()
    proto.components.environments["py"].urn = python_urns.EMBEDDED_PYTHON_LOOPBACK
    cleanups = start_loopback_workers(proto, PipelineOptions([]))
    try:
        env = proto.components.environments["py"]
        assert env.urn == "beam:env:external:v1"
        payload = beam_runner_api_pb2.ExternalPayload.FromString(env.payload)
        endpoint: endpoints_pb2.ApiServiceDescriptor = payload.endpoint
        host, _, port = endpoint.url.rpartition(":")
        assert host == "127.0.0.1"
        new = [x for x in listeners.listeners([os.getpid()]) if x.port not in before]
        assert [x.port for x in new] == [int(port)]
        assert all(x.loopback for x in new), new
    finally:
        for cleanup in cleanups:
            cleanup()


@pytest.mark.skipif(shutil.which("java") is None, reason="the Flink runner checks for Java first")
def test_uber_jar_submission_to_a_cluster_needs_the_flag() -> None:
    settings = RunnerSettings(
        name="flink", flink_master="127.0.0.1:1", beam_args=["--flink_submit_uber_jar"], streaming=False
    )
    # refused before the cluster is probed: nothing answers at 127.0.0.1:1, which would say so
    with pytest.raises(RunnerError, match=f"--flink_submit_uber_jar: .*all interfaces.*{ALLOW_FLAG}"):
        make_runner(settings)
