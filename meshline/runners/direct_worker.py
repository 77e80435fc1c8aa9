"""The worker processes of the direct runner's ``multi_processing`` mode (:mod:`meshline.runners.direct`).

A worker is Beam's SDK harness (``apache_beam.runners.worker.sdk_worker_main``, configured by
the environment variables the runner sets) with a few differences:

- it ends when the run's ``meshline`` process ends, however that ends: Linux sends it SIGTERM
  when its parent dies (``prctl(PR_SET_PDEATHSIG)``), and a thread watches the parent as
  well; either way the hidden temporary files its targets were filling are removed
  (:mod:`meshline.cleanup`) before it exits, as an interrupted run's own process does;
- Ctrl-C, which the terminal sends to every process of the run, is ignored: the ``meshline``
  process stops the run, and the workers end with it;
- a worker has no live progress line, page or tap (those count what the ``meshline``
  process's own worker does); the run's table comes from the runner at the end.

Workers are forked from a *zygote* (:func:`zygote`): a child the ``meshline`` process forks
just before the runner starts its gRPC servers, holding everything the run imported. A worker
forked from it starts in milliseconds instead of the second and a half Python takes to import
Beam, and shares the zygote's memory until it writes to it (the zygote moves what it holds
out of the garbage collector's sight with ``gc.freeze()``, so collections in the workers do
not copy it). The zygote forks nothing else and never uses gRPC, whose state is not safe to
fork once it has servers or channels. Where there is no zygote (``fork`` is not available, or
the runner was made without one) ``python -m meshline.runners.direct_worker PARENT_PID`` starts
a worker the ordinary way.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any, NoReturn

__all__ = ["main", "zygote"]

WATCH_INTERVAL_S = 1.0
_PR_SET_PDEATHSIG = 1


def _end(*_: Any) -> NoReturn:
    """The run is over for this worker: undo what it was filling, then exit at once."""
    _exit(143)


def _exit(code: int) -> NoReturn:
    """Exit now, having removed what this worker was filling and had not committed.

    A worker whose run ended normally has committed everything (nothing is left to remove);
    one whose ``meshline`` process died may learn it first from its control stream closing,
    before any signal: either way, what is still registered here is not in place.
    """
    try:
        from meshline import cleanup

        cleanup.interrupted()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _die_with_parent(signum: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL_S)
    _end()


def _become_worker(parent: int) -> None:
    """Signals and the parent watch of a worker process whose parent is ``parent``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _end)
    _die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # the parent is already gone (or this was started by hand)
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="meshline-parent-watch", daemon=True).start()


def main(argv: list[str]) -> None:
    """``python -m meshline.runners.direct_worker PARENT_PID [--zygote-fd=FD]``: one worker, started by
    ``sh -c``; or, with ``--zygote-fd``, a zygote answering on the socket FD."""
    parent = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else os.getppid()
    for arg in argv[2:]:
        if arg.startswith("--zygote-fd=") and arg[12:].isdigit():
            zygote(socket.socket(fileno=int(arg[12:])), parent)
    _become_worker(parent)
    _harness()


def _harness() -> NoReturn:
    """Beam's SDK harness, configured by this process's environment; then exit (:func:`_exit`)."""
    code = 0
    try:
        from apache_beam.runners.worker import sdk_worker_main

        sdk_worker_main.main([])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    _exit(code)


# --------------------------------------------------------------------------- the zygote


def zygote(channel: socket.socket, parent: int) -> NoReturn:
    """The zygote's life, in a child forked from the ``meshline`` process ``parent`` (or started by it
    as ``python -m meshline.runners.direct_worker PARENT --zygote-fd=FD``).

    It reads requests from ``channel``, one JSON object per line: ``{"id": N, "env": {…}}``
    forks a worker with that environment and answers ``{"id": N, "pid": PID}``, then
    ``{"id": N, "exit": STATUS}`` once the worker has ended. It ends when ``channel`` closes
    and its workers have ended, or when ``parent`` dies (and its workers with it).
    """
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _die_with_parent(signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)
        _fresh_stdio()
        from apache_beam.runners.worker import sdk_worker_main  # noqa: F401  (what every worker needs)
        from apache_beam.utils import thread_pool_executor

        # Beam's shared pool hands work to its idle threads: the forked copy has none of them
        thread_pool_executor._SHARED_UNBOUNDED_THREAD_POOL_EXECUTOR = (
            thread_pool_executor._SharedUnboundedThreadPoolExecutor()
        )
        _serve(channel, parent)
    except BaseException:  # never return into the meshline process's code
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def _serve(channel: socket.socket, parent: int) -> None:
    workers: dict[int, int] = {}  # pid -> request id
    pending = b""
    open_ = True
    frozen = False
    while open_ or workers:
        if os.getppid() != parent:
            return
        readable, _, _ = select.select([channel] if open_ else [], [], [], 0.2)
        if readable:
            data = channel.recv(1 << 16)
            if not data:
                open_ = False
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                if "preload" in request:
                    _preload(request["preload"])
                    continue
                if not frozen:  # what is here now stays shared: collections in the workers leave it be
                    gc.freeze()
                    frozen = True
                pid = os.fork()
                if pid == 0:
                    _worker(channel, request["env"])
                workers[pid] = request["id"]
                _send(channel, {"id": request["id"], "pid": pid})
        while workers:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            _send(channel, {"id": workers.pop(pid, -1), "exit": os.waitstatus_to_exitcode(status)})
        if not open_ and not workers:
            return


def _preload(modules: list[str]) -> None:
    import importlib

    for name in modules:
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:  # the worker imports it when it needs it, or says why it cannot
                continue


def _fresh_stdio() -> None:
    """Standard output and error as new objects on the same descriptors (no lock of the parent's)."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        try:
            setattr(sys, name, open(fd, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace"))  # noqa: SIM115
        except OSError:
            pass


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    try:
        channel.sendall(json.dumps(message).encode() + b"\n")
    except OSError:  # the meshline process is gone or stopped listening: the answer is moot
        pass


def _worker(channel: socket.socket, env: dict[str, str]) -> NoReturn:
    """A worker forked from the zygote: Beam's harness with ``env``, as a fresh process would run it."""
    try:
        channel.close()
        os.environ.clear()
        os.environ.update(env)
        _fresh_logging()
        from meshline import cleanup

        cleanup.reset()  # what the meshline process had registered is its own to undo
        _become_worker(os.getppid())
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    _harness()


def _fresh_logging() -> None:
    """Logging as in a new process: Beam's harness adds its own handler (to the runner) and levels."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for f in list(root.filters):
        root.removeFilter(f)
    root.setLevel(logging.WARNING)
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.setLevel(logging.NOTSET)
            logger.disabled = False
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
    logging.disable(logging.NOTSET)


if __name__ == "__main__":
    main(sys.argv)
