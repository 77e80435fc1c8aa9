"""What tests that run `meshline` as a process share: free ports, waiting for a port, the process.

Servers started for tests (tests/servers/) bind 127.0.0.1 and pick free ports the same way.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "free_port", "listening", "meshline_exe", "running", "wait_listening"]

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nothing listens on right now (on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def meshline_exe() -> str:
    """The `meshline` command of this interpreter's environment."""
    return str(Path(sys.executable).parent / "meshline")


def wait_listening(
    port: int, proc: subprocess.Popen, seconds: float = 120, what: str = "the webhook"
) -> None:
    """Poll until ``port`` accepts connections; fail if ``proc`` ends first or the deadline passes."""
    deadline = time.monotonic() + seconds
    while not listening(port):
        if proc.poll() is not None:
            err = proc.communicate()[1] if proc.stderr is not None else ""
            raise AssertionError(f"the run ended before {what} listened: {str(err)[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never listened on port {port} within {seconds}s")
        time.sleep(0.2)


@contextmanager
def running(*args: str, stdout: Any = subprocess.PIPE, **popen: Any) -> Iterator[subprocess.Popen]:
    """`meshline ARGS…` as a subprocess with text stderr (and stdout unless told otherwise),
    from the repository root; killed when the block ends if it is still running."""
    proc = subprocess.Popen(
        [meshline_exe(), *args],
        cwd=popen.pop("cwd", ROOT),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
