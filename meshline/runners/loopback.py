"""Nothing a run opens listens beyond 127.0.0.1, unless the user passes ``--allow-exposed-runner``.

Beam's servers accept pipelines, and a pipeline may name a shell command as its
environment, so anyone who reaches one runs code as the user. Each is kept on loopback:

- Beam's LOOPBACK worker pool, in the ``meshline`` process: Beam binds it on ``[::]``;
  :func:`start_loopback_workers` (the runners' ``start_and_replace_loopback_environments``)
  starts the same servicer on ``127.0.0.1`` and hands that address to the runner.
- Prism: Meshline builds it from source with its listeners patched to 127.0.0.1
  (:mod:`meshline.runners.prism`).
- Beam's Flink job server: a Java agent rewrites its gRPC servers' bind
  (:mod:`meshline.runners.flink_agent`); Flink's own ports get a loopback configuration.
- The safety net, for every runner server a run starts, including a Prism binary or
  job-server jar the user brings: :class:`ServerWatch` reads the listening sockets of the
  server's processes (Linux ``/proc``) once it is up, stops it and refuses in one line if
  any is beyond loopback, then checks again every :data:`WATCH_INTERVAL_S` while it runs
  (Flink opens its Fn API servers only when a job starts).

``--allow-exposed-runner`` turns the refusals off; Meshline's own builds still bind
loopback, because every address they hand out is ``localhost`` anyway.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from meshline.errors import RunnerError
from meshline.runners import listeners

__all__ = ["ALLOW_FLAG", "WATCH_INTERVAL_S", "ServerWatch", "refusal", "start_loopback_workers"]

ALLOW_FLAG = "--allow-exposed-runner"
WATCH_INTERVAL_S = 2.0
FULL_CHECK_EVERY = 5
RUNS_CODE = "anyone who can reach it can run code as this user"


def refusal(what: str, why: str = RUNS_CODE) -> str:
    """The one line that refuses ``what`` (which says what listens where) and names the opt-in flag."""
    return f"{what}: {why}; refusing to run (pass {ALLOW_FLAG} to accept that)"


# --------------------------------------------------------------------------- the worker pool


def _start_worker_pool(bind: str = "127.0.0.1:0", **servicer_args: Any) -> tuple[str, Any]:
    """Beam's ``BeamFnExternalWorkerPoolServicer.start``, bound to ``bind`` instead of ``[::]``."""
    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2_grpc
    from apache_beam.runners.worker import worker_pool_main
    from apache_beam.utils import thread_pool_executor

    options = [("grpc.http2.max_pings_without_data", 0), ("grpc.http2.max_ping_strikes", 0)]
    server = grpc.server(thread_pool_executor.shared_unbounded_instance(), options=options)
    port = server.add_insecure_port(bind)
    if not port:
        raise RunnerError(f"could not start Beam's worker pool on {bind}")
    pool = worker_pool_main.BeamFnExternalWorkerPoolServicer(**servicer_args)
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
    server.start()

    def stop_worker_processes() -> None:  # only with the use_loopback_process_worker experiment
        for process in list(pool._worker_processes.values()):
            worker_pool_main.kill_process_gracefully(process)

    atexit.register(stop_worker_processes)
    return f"{bind.rsplit(':', 1)[0]}:{port}", server


def start_loopback_workers(pipeline: Any, options: Any) -> list[Callable[[], Any]]:
    """Beam's ``PortableRunner.start_and_replace_loopback_environments`` with a loopback-only pool.

    Each LOOPBACK environment of the pipeline proto becomes an EXTERNAL one pointing at a
    worker pool in this process; returns the callbacks that stop those pools.
    """
    import copy
    import functools

    from apache_beam.options.pipeline_options import DebugOptions, PortableOptions
    from apache_beam.portability import python_urns
    from apache_beam.runners.worker import sdk_worker_main
    from apache_beam.transforms import environments

    portable = copy.deepcopy(options.view_as(PortableOptions))
    debug = options.view_as(DebugOptions)
    cleanups: list[Callable[[], Any]] = []
    for env in pipeline.components.environments.values():
        if env.urn != python_urns.EMBEDDED_PYTHON_LOOPBACK:
            continue
        portable.environment_type = "EXTERNAL"
        portable.environment_config, server = _start_worker_pool(
            state_cache_size=sdk_worker_main._get_state_cache_size_bytes(options=options),
            data_buffer_time_limit_ms=sdk_worker_main._get_data_buffer_time_limit_ms(debug.experiments or []),
            use_process=debug.lookup_experiment("use_loopback_process_worker", False),
        )
        external = environments.ExternalEnvironment.from_options(portable).to_runner_api(None)  # type: ignore[arg-type]
        env.urn = external.urn
        env.payload = external.payload
        cleanups.append(functools.partial(server.stop, 1))
    return cleanups


# --------------------------------------------------------------------------- runner servers


class ServerWatch:
    """Keeps a started runner server (and what it starts) listening on loopback only.

    :meth:`check` finds the server among this process's descendants by the port it serves,
    stops it and raises a one-line :class:`RunnerError` when it listens elsewhere too;
    then a daemon thread checks again every ``interval`` seconds and kills the server, with
    that line on stderr, if a listener beyond loopback appears later.
    """

    def __init__(self, name: str, port: int, stop: Callable[[], Any], interval: float = WATCH_INTERVAL_S):
        self.name = name
        self.port = port
        self._stop = stop
        self._interval = interval
        self._pid: int | None = None
        self._done = threading.Event()

    def check(self) -> None:
        """Refuse (stop the server, raise) if it listens beyond loopback; start watching it."""
        self._pid = self._find_server()
        if self._pid is None:
            self._stop()
            raise RunnerError(
                f"cannot check where {self.name} listens: no process this run started serves its port "
                f"{self.port}; refusing to run (pass {ALLOW_FLAG} to run it unchecked)"
            )
        found = listeners.exposed(listeners.process_tree(self._pid))
        if found:
            self._stop()
            raise RunnerError(self._message(found))
        threading.Thread(target=self._watch, name="meshline-loopback-watch", daemon=True).start()

    def exposed_now(self) -> list[listeners.Listener]:
        """What the server listens on beyond loopback at this moment (nothing if it is not found)."""
        pid = self._find_server()
        return [] if pid is None else listeners.exposed(listeners.process_tree(pid))

    def close(self) -> None:
        self._done.set()

    def _message(self, found: list[listeners.Listener]) -> str:
        where = ", ".join(sorted({listener.address for listener in found}))
        return refusal(f"{self.name} listens on {where}, beyond 127.0.0.1")

    def _find_server(self) -> int | None:
        mine = listeners.process_tree(os.getpid())[1:]
        for listener in listeners.listeners(mine):
            if listener.protocol == "tcp" and listener.port == self.port:
                return listener.pid
        return None

    def _watch(self) -> None:
        assert self._pid is not None
        # Reading the socket tables costs ~10 ms of CPU on a busy machine, listing a process's
        # sockets well under 1: the tables are read when the sockets changed, and every
        # FULL_CHECK_EVERY rounds anyway (a socket may start listening after it was created).
        last: frozenset[str] = frozenset()
        rounds = 0
        while not self._done.wait(self._interval):
            if not os.path.exists(f"/proc/{self._pid}"):
                return
            tree = listeners.process_tree(self._pid)
            sockets = listeners.socket_inodes(tree)
            rounds += 1
            if sockets == last and rounds % FULL_CHECK_EVERY:
                continue
            last = sockets
            found = listeners.exposed(tree)
            if found:
                for pid in tree:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                if sys.__stderr__ is not None:
                    print(self._message(found), file=sys.__stderr__, flush=True)
                return


def allowed_warning(name: str, found: list[listeners.Listener]) -> str:
    """The one-line warning for a server that listens beyond loopback, allowed by the flag."""
    where = ", ".join(sorted({listener.address for listener in found}))
    return f"warning: {name} listens on {where}, beyond 127.0.0.1 ({ALLOW_FLAG})"


def unchecked_warning(name: str) -> str:
    """The one-line warning for a server Meshline did not confine and cannot check on this platform."""
    return (
        f"warning: cannot check where {name} listens on this platform (Linux /proc only); "
        "it may accept connections from other machines"
    )
