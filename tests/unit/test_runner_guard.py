"""Runner servers started through :func:`meshline.runners.guard.guarded` die with Meshline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from meshline.runners.guard import guarded

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")

_SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, not yet reaped
    except FileNotFoundError:
        return False


def _server_of_a_killed_parent(guard: bool) -> int:
    """Start a parent that starts a sleeping 'server', SIGKILL the parent; the server's pid."""
    wrap = "guarded" if guard else "list"
    code = (
        "import subprocess, sys, time\n"
        "from meshline.runners.guard import guarded\n"
        f"p = subprocess.Popen({wrap}({_SLEEPER!r}))\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    server = int(parent.stdout.readline())
    time.sleep(0.5)  # the shim has exec'd into the server
    assert _alive(server)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    return server


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_a_guarded_server_dies_when_its_parent_is_sigkilled() -> None:
    server = _server_of_a_killed_parent(guard=True)
    assert _wait_dead(server), "the server outlived its SIGKILLed parent"


def test_without_the_guard_the_server_would_outlive_it() -> None:
    """The control: what happened before (the Flink JVM stayed after a SIGKILL)."""
    server = _server_of_a_killed_parent(guard=False)
    try:
        assert not _wait_dead(server, timeout=1.5)
    finally:
        os.kill(server, signal.SIGKILL)


def test_the_guarded_command_runs_as_itself() -> None:
    r = subprocess.run(
        guarded([sys.executable, "-c", "import sys; print(sys.argv[1:]); raise SystemExit(7)", "a b", "c"]),
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 7
    assert r.stdout.strip() == "['a b', 'c']"


def test_once_a_run_stops_only_the_main_thread_writes_to_stderr() -> None:
    code = (
        "import sys, threading\n"
        "from meshline.runners.guard import silence_runner_threads\n"
        "silence_runner_threads()\n"
        "t = threading.Thread(target=lambda: (print('worker noise', file=sys.stderr), 1 / 0))\n"
        "t.start(); t.join()\n"
        "print('run: interrupted; stopping', file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0
    assert r.stderr == "run: interrupted; stopping\n"
