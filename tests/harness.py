"""What tests share: free ports, waiting for a port, a managed server process, the `meshline` process.

Servers started for tests (tests/servers/) bind 127.0.0.1, pick free ports here and run under
:func:`serving`, which stops each one (its whole process group) when its block ends.
"""

from __future__ import annotations

import fcntl
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "ROOT",
    "free_port",
    "component",
    "dies_with_us",
    "integration",
    "trigger",
    "listening",
    "meshline_exe",
    "one_at_a_time",
    "rows_in",
    "running",
    "serving",
    "wait_listening",
]

ROOT = Path(__file__).resolve().parent.parent


_GIVEN: set[int] = set()


def dies_with_us(cmd: list[str]) -> list[str]:
    """``cmd`` so that Linux kills its process when this one dies, however it dies.

    A test server outlives a pytest worker (or a benchmark) killed with SIGKILL unless its
    process asks for that itself; Meshline's runner servers already do it this way
    (:func:`meshline.runners.guard.guarded`). Start such a command from the main thread:
    the signal follows the thread that started the process.
    """
    from meshline.runners.guard import guarded

    return guarded([str(c) for c in cmd])


def free_port() -> int:
    """A TCP port nothing listens on right now (on 127.0.0.1), not handed out before by this process.

    Under pytest-xdist each worker takes only the ports whose half equals its number modulo the
    number of workers (halved: the kernel hands out mostly odd, or mostly even, ports), so two
    workers starting servers at the same moment never pick the same port.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, …
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    mine = int(worker[2:]) % workers if worker[2:].isdigit() else 0
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if (port >> 1) % workers == mine and port not in _GIVEN:
            _GIVEN.add(port)
            return port


def one_at_a_time(name: str) -> Callable[[F], F]:
    """Run the decorated function (a server's provisioning into ``~/.cache/meshline``) in one
    process at a time: pytest-xdist workers may start the same server at once, and the second
    then waits and finds the first one's work done (each provisioning checks its marker)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def locked(*args: Any, **kwargs: Any) -> Any:
            cache = Path(os.environ.get("MESHLINE_CACHE") or Path.home() / ".cache" / "meshline")
            (cache / "locks").mkdir(parents=True, exist_ok=True)
            with open(cache / "locks" / f"{name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                return fn(*args, **kwargs)

        return locked  # type: ignore[return-value]

    return wrap


def listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def component(name: str, kind: str, **config: Any) -> dict[str, Any]:
    """A source, transformation or target of :func:`integration`: ``component("out", "file", path=…)``."""
    return {"name": name, "type": kind, "config": config}


def trigger(
    name: str, target: str, steps: list[str] | None = None, filters: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A trigger of :func:`integration`: filters, then steps, then the target."""
    return {
        "name": name,
        **({"filters": filters} if filters else {}),
        **({"steps": steps} if steps else {}),
        "target": target,
    }


def integration(
    path: Path,
    *,
    sources: list[dict[str, Any]],
    targets: list[dict[str, Any]],
    triggers: list[dict[str, Any]],
    transformations: list[dict[str, Any]] | None = None,
    dead_letter: str | None = None,
    name: str = "it",
    **spec: Any,
) -> Path:
    """Write an Integration file to ``path`` (returned) from plain values (:func:`component`,
    :func:`trigger`); ``spec`` adds other keys of ``spec:`` as they are (``params``, …). A test
    says what it configures as data, and quoting is yaml's business."""
    import yaml

    body: dict[str, Any] = {"sources": sources}
    if transformations:
        body["transformations"] = transformations
    body |= {"targets": targets, "triggers": triggers, **spec}
    if dead_letter is not None:
        body["deadLetter"] = dead_letter
    doc = {
        "apiVersion": "meshline.dev/v1alpha1",
        "kind": "Integration",
        "metadata": {"name": name},
        "spec": body,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def rows_in(folder: Path, pattern: str = "**/*.jsonl") -> list[dict[str, Any]]:
    """Every row of the files under ``folder`` matching ``pattern``, file by file in name order, read
    as a user's tool would (the format from the extension: jsonl, json, parquet, avro, csv)."""
    from meshline.connectors.formats import read_rows

    return [row for f in sorted(folder.glob(pattern)) for row in read_rows(f.suffix[1:], f.read_bytes())]


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
            if isinstance(err, bytes):
                err = err.decode(errors="replace")
            raise AssertionError(f"the run ended before {what} listened: {str(err)[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never listened on port {port} within {seconds}s")
        time.sleep(0.2)


@contextmanager
def running(*args: str, stdout: Any = subprocess.PIPE, **popen: Any) -> Iterator[subprocess.Popen]:
    """`meshline ARGS…` as a subprocess with text stderr (and stdout unless told otherwise),
    from the repository root; killed when the block ends if it is still running."""
    proc = subprocess.Popen(
        dies_with_us([meshline_exe(), *args]),
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


@contextmanager
def serving(
    cmd: list[str],
    *,
    ready: Callable[[], bool],
    log: Path,
    what: str,
    timeout: float = 120,
    stop_timeout: float = 20,
    **popen: Any,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process in its own process group, output to ``log``, yielded once ``ready()`` is
    true (``OSError`` counts as not yet). Fails with the log's tail if it exits first or misses the
    deadline. When the block ends its stdin (if a pipe) is closed and the group gets SIGTERM, then
    SIGKILL after ``stop_timeout`` seconds: wrappers such as ``runuser`` leave no child behind."""
    out = open(log, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        dies_with_us(cmd), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen
    )

    def tail() -> str:
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail()}")
            try:
                if ready():
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start in {timeout}s:\n{tail()}")
            time.sleep(0.3)
        yield proc
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        out.close()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
