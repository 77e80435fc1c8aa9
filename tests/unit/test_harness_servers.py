"""Test servers die with the process that started them, even when it is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.harness import ROOT

STARTER = """
import subprocess, sys
from tests.harness import dies_with_us
child = subprocess.Popen(dies_with_us(["sleep", "120"]))
print(child.pid, flush=True)
sys.stdin.read()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has died
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_server_dies_with_a_sigkilled_starter() -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        server = int(starter.stdout.readline())
        deadline = time.monotonic() + 30
        while not _alive(server) and time.monotonic() < deadline:  # the shim has exec'd sleep
            time.sleep(0.05)
        assert _alive(server)
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(server), "the server outlived the process that started it"
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        try:
            os.kill(server, signal.SIGKILL)
        except (ProcessLookupError, UnboundLocalError):
            pass
