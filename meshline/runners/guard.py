"""Runner servers (the Flink job server JVM, the Prism binary) die with Meshline, quietly.

Beam starts them as child processes and stops them at exit; a Meshline killed with
SIGKILL never reaches that, and the servers lived on (holding ports and gigabytes).
:func:`guarded` wraps a server's command in a tiny Python ``exec`` shim that first asks
Linux to kill it when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``; the setting
survives ``exec``), then becomes the server. Elsewhere the command is left as it is.

Linux sends the signal when the *thread* that started the child ends; Beam starts these
servers from the thread that runs the pipeline, which lives as long as the run.

:class:`GuardedCommand` also checks, once a server is up, that it listens on loopback only
(:mod:`meshline.runners.loopback`).

:func:`quiet_stop_on_exit`: Beam's ``StopOnExitJobServer`` stops the server on Ctrl-C
*before* it calls Meshline's own handler, so Beam's threads saw their gRPC streams close
and each printed a traceback ("Socket closed") above Meshline's one-line "interrupted",
and the job could no longer be asked what it had committed. The quiet version silences
those threads and leaves the server to Meshline's handler.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = [
    "GuardedCommand",
    "guarded",
    "quiet_stop_on_exit",
    "quiet_worker_tracebacks",
    "silence_runner_threads",
]

_SHIM = (
    "import ctypes,os,signal,sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) != 0: sys.exit('prctl failed')\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)  # the parent is already gone\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def guarded(cmd: list[str]) -> list[str]:
    """``cmd`` so that its process is killed when this process dies, however it dies."""
    if not sys.platform.startswith("linux"):
        return cmd
    return [sys.executable, "-S", "-c", _SHIM, str(os.getpid()), *map(str, cmd)]


class GuardedCommand:
    """Mixin for a Beam ``SubprocessJobServer``: its process is started :func:`guarded`, then checked.

    Once the server is up, a :class:`~meshline.runners.loopback.ServerWatch` makes sure it
    listens on loopback only (and keeps watching), unless ``allow_exposed``. Where that
    cannot be checked (not Linux), a server Meshline did not confine itself (``confined``
    false: a binary or jar the user brought) gets a one-line warning.
    """

    server_name = "the runner server"
    allow_exposed = False
    confined = False
    _watch: Any = None
    _port = 0

    def server_command(self, cmd: list[str]) -> list[str]:
        """The server's command line before it is guarded; subclasses add to it."""
        return cmd

    def subprocess_cmd_and_endpoint(self) -> Any:
        cmd, endpoint = super().subprocess_cmd_and_endpoint()  # type: ignore[misc]
        self._port = int(str(endpoint).rsplit(":", 1)[-1])
        return guarded(self.server_command([str(c) for c in cmd])), endpoint

    def start(self) -> Any:
        from meshline.runners import listeners, loopback

        stub = super().start()  # type: ignore[misc]
        if not listeners.supported():
            if not self.confined and not self.allow_exposed:
                print(loopback.unchecked_warning(self.server_name), file=sys.stderr)
            return stub
        if self.allow_exposed:
            found = loopback.ServerWatch(self.server_name, self._port, stop=self.stop).exposed_now()
            if found:
                print(loopback.allowed_warning(self.server_name, found), file=sys.stderr)
            return stub
        if self._watch is None:
            self._watch = loopback.ServerWatch(self.server_name, self._port, stop=self.stop)
            try:
                self._watch.check()
            except BaseException:
                self._watch = None
                raise
        return stub

    def stop(self) -> Any:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
        return super().stop()  # type: ignore[misc]


def silence_runner_threads() -> None:
    """A run is being stopped: the runner's threads will see their connections close; say nothing.

    Their uncaught exceptions and log records are dropped, and so is what they print to stderr
    (Beam's SDK worker prints a failed instruction's traceback there directly); the main
    thread, which reports the stop, still writes.
    """
    import logging
    import threading

    threading.excepthook = lambda args: None
    logging.disable(logging.CRITICAL)
    if not isinstance(sys.stderr, _MainThreadOnly):
        sys.stderr = _MainThreadOnly(sys.stderr)


def quiet_worker_tracebacks() -> None:
    """Keep the SDK worker's tracebacks of failed bundles off stderr (the run's failure is one line).

    Beam's SDK worker prints the traceback of an instruction that failed straight to
    stderr from its own thread, before the runner reports the failure (which the CLI says
    in one line). ``MESHLINE_DEBUG=1`` keeps them.
    """
    if os.environ.get("MESHLINE_DEBUG") or isinstance(sys.stderr, (_NoWorkerTracebacks, _MainThreadOnly)):
        return
    sys.stderr = _NoWorkerTracebacks(sys.stderr)


class _NoWorkerTracebacks:
    """A text stream that drops a traceback another thread writes in one piece."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._dropped: Any = None  # the thread whose traceback was dropped last (print's "\n" follows)

    def write(self, text: str) -> int:
        import threading

        thread = threading.current_thread()
        if thread is not threading.main_thread():
            if text.startswith("Traceback (most recent call last)"):
                self._dropped = thread
                return len(text)
            if text == "\n" and self._dropped is thread:
                self._dropped = None
                return len(text)
        return int(self._stream.write(text))

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _MainThreadOnly:
    """A text stream that passes on only what the main thread writes."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        import threading

        if threading.current_thread() is threading.main_thread():
            return int(self._stream.write(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def quiet_stop_on_exit(job_server: Any) -> Any:
    """Beam's ``StopOnExitJobServer`` around ``job_server``, leaving Ctrl-C to Meshline.

    Beam's handler stops the server, then calls the handler it found (Meshline's). The
    server must still answer then: Meshline cancels the job through it and asks it what
    was committed, for the table it prints. So on Ctrl-C this one silences the runner's
    threads and calls Meshline's handler only; the server dies with the process
    (:func:`guarded`), or at exit.
    """
    from apache_beam.runners.portability.job_server import StopOnExitJobServer

    class _QuietStopOnExit(StopOnExitJobServer):  # type: ignore[misc]
        def _sigint_handler(self, sig: int, frame: Any) -> None:
            silence_runner_threads()
            if callable(self._original_sigint_handler):
                self._original_sigint_handler(sig, frame)

    return _QuietStopOnExit(job_server)
