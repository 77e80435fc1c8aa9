"""The ``direct`` runner: Beam's ``FnApiRunner``, on one core or several, its servers on 127.0.0.1.

With ``--direct_num_workers=N`` and ``--direct_running_mode=multi_processing`` (Meshline sets
the mode when only the number is given) the runner starts N SDK worker processes and splits
each stage's input elements between them; the file source's elements are byte ranges of its
files (:mod:`meshline.connectors.file`), so one large file keeps N cores busy. The workers
reach the runner over gRPC (Fn API control, data, state, logging), and so do
``multi_threading``'s in-process workers.

Beam's ``GrpcServer`` (``fn_api_runner/worker_handlers.py``) binds those four servers with
``add_insecure_port('[::]:0')``, and ``SubprocessSdkWorker.run``
(``portability/local_job_service.py``) binds each worker's logging server the same way: on
every interface, where anyone who reaches them can take part in the run. :func:`install` gives
those two Beam modules a ``grpc`` whose servers bind a wildcard address as ``127.0.0.1`` instead
(everything else is the real module), and :class:`_LoopbackGrpcServer` checks, on Linux, that
the runner's four ports listen on loopback only before any worker starts; a listener beyond it
stops the run with a one-line error. The addresses Beam hands the workers were ``localhost``
already.

A worker process is Meshline's (:mod:`.direct_worker`) rather than Beam's
``python -m apache_beam.runners.worker.sdk_worker_main``: the same harness, which ends when
Meshline's process does and leaves Ctrl-C to it, and is forked from a zygote the runner
forks as the run starts (:class:`_Zygote`), before any gRPC server exists: a worker then
starts in milliseconds rather than importing Beam for a second and a half, and shares the
memory of what was imported.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import queue
import re
import shlex
import socket
import sys
import threading
import weakref
from typing import Any

from meshline.errors import RunnerError
from meshline.runners.options import given_option

__all__ = ["direct_options", "direct_runner", "install", "worker_command"]

LOOPBACK = "127.0.0.1"
_WILDCARDS = ("[::]", "::", "0.0.0.0", "", "*")

_LOCK = threading.Lock()
_INSTALLED = False
_ALLOW_EXPOSED = False


def direct_options(beam_args: list[str]) -> list[str]:
    """The Beam options Meshline adds: ``--direct_num_workers`` above 1 (or 0, one per core)
    without a running mode means worker processes (Beam would run one worker and warn)."""
    workers = given_option(beam_args, "direct_num_workers")
    if workers is None or given_option(beam_args, "direct_running_mode") is not None:
        return []
    try:
        count = int(workers)
    except ValueError:
        return []  # Beam says what is wrong with it
    return ["--direct_running_mode=multi_processing"] if count != 1 else []


def direct_runner(
    beam_args: list[str] | None = None, *, allow_exposed: bool = False
) -> tuple[Any, list[str]]:
    """The direct runner and the Beam options it adds (:func:`direct_options`).

    ``allow_exposed`` (``--allow-exposed-runner``): should its servers listen beyond loopback
    after all (a Beam that binds them some other way), warn instead of stopping the run.
    """
    global _ALLOW_EXPOSED
    install()
    _ALLOW_EXPOSED = allow_exposed
    args = list(beam_args or [])
    added = direct_options(args)
    runner = _runner_class()()
    if given_option([*added, *args], "direct_running_mode") == "multi_processing":
        from meshline import observe

        if observe.ENABLED:
            raise RunnerError(
                "--metrics-port, --ui and tap watch the workers in this process; worker processes "
                "(--direct_num_workers, --direct_running_mode=multi_processing) are other processes: "
                "use one or the other"
            )
        # now, while this process is most likely still one thread (see _Zygote.start)
        runner.zygote = zygote = _Zygote.start()
        if zygote is not None:  # a runner that never runs: its zygote ends with it
            weakref.finalize(runner, zygote.close)
    return runner, added


def worker_command(zygote: int = 0) -> str:
    """The shell command of one worker process (Beam runs it with ``sh -c``); a worker of the
    zygote ``zygote`` (:data:`_ZYGOTES`) is forked from it instead of running the command."""
    return f"exec {shlex.quote(sys.executable)} -m meshline.runners.direct_worker {os.getpid()}" + (
        f" --from-zygote={zygote}" if zygote else ""
    )


_ZYGOTE_FLAG = re.compile(r" --from-zygote=(\d+)$")
#: What a zygote imports, as this process has, before it forks workers (their DoFns' modules).
_PRELOAD = ("meshline", "apache_beam")


# --------------------------------------------------------------------------- the runner


_RUNNER: type | None = None


def _runner_class() -> type:
    """:class:`FnApiRunner` whose ``multi_processing`` workers are Meshline's (made on first use:
    importing this module imports no Beam)."""
    global _RUNNER
    if _RUNNER is not None:
        return _RUNNER
    from apache_beam.portability import python_urns
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    beams_command = f"{sys.executable} -m apache_beam.runners.worker.sdk_worker_main"

    class MeshlineDirectRunner(FnApiRunner):  # type: ignore[misc]
        """Beam's FnApiRunner; ``multi_processing`` workers are forked by a zygote (:class:`_Zygote`)."""

        zygote: _Zygote | None = None  # started by direct_runner when the options were known

        def run_via_runner_api(self, pipeline_proto: Any, options: Any) -> Any:
            ours = [
                env
                for env in pipeline_proto.components.environments.values()
                if env.urn == python_urns.SUBPROCESS_SDK and env.payload.decode("utf-8") == beams_command
            ]
            zygote, self.zygote = self.zygote, None
            if ours and (zygote is None or zygote.closed):
                zygote = _Zygote.start()
            if ours:
                # The DoFns run in the workers, so no RouteFn.setup() here moves what this
                # process holds out of the cycle collector's sight (meshline.compiler.dofn):
                # unfrozen, its last collection at exit walked it all for half a second.
                gc.freeze()
            try:
                if zygote is not None and ours:
                    zygote.preload(sorted(name for name in sys.modules if name.startswith(_PRELOAD)))
                for env in ours:
                    env.payload = worker_command(zygote.key if zygote else 0).encode("utf-8")
                return super().run_via_runner_api(pipeline_proto, options)
            finally:
                if zygote is not None:
                    zygote.close()

    _RUNNER = MeshlineDirectRunner
    return _RUNNER


# --------------------------------------------------------------------------- loopback


class _LoopbackServer:
    """A ``grpc.Server`` whose wildcard binds are ``127.0.0.1`` binds."""

    def __init__(self, server: Any):
        self._server = server

    def add_insecure_port(self, address: str) -> int:
        return int(self._server.add_insecure_port(loopback_address(address)))

    def add_secure_port(self, address: str, credentials: Any) -> int:
        return int(self._server.add_secure_port(loopback_address(address), credentials))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class _LoopbackGrpc:
    """The ``grpc`` module as two Beam modules see it: :func:`server` makes :class:`_LoopbackServer`\\ s."""

    def __init__(self, real: Any):
        self._real = real

    def server(self, *args: Any, **kwargs: Any) -> _LoopbackServer:
        return _LoopbackServer(self._real.server(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def loopback_address(address: str) -> str:
    """``[::]:0`` → ``127.0.0.1:0``; an address naming a host is left as it is."""
    host, sep, port = address.rpartition(":")
    if not sep:
        return address
    return f"{LOOPBACK}:{port}" if host in _WILDCARDS else address


def install() -> None:
    """Beam's direct-runner servers bind 127.0.0.1 from now on in this process (idempotent)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from apache_beam.runners.portability import local_job_service
        from apache_beam.runners.portability.fn_api_runner import worker_handlers

        for module in (worker_handlers, local_job_service):
            if not isinstance(module.grpc, _LoopbackGrpc):
                module.grpc = _LoopbackGrpc(module.grpc)  # type: ignore[attr-defined]
        worker_handlers.GrpcServer = _loopback_grpc_server(worker_handlers.GrpcServer)  # type: ignore[misc,assignment]
        local_job_service.SubprocessSdkWorker = _forked_sdk_worker(local_job_service.SubprocessSdkWorker)  # type: ignore[misc,assignment]
        _INSTALLED = True


def _loopback_grpc_server(base: type) -> type:
    class _LoopbackGrpcServer(base):  # type: ignore[misc,valid-type]
        """Beam's GrpcServer, checked: its ports listen on loopback only (Linux), or the run stops."""

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            ports = {self.control_port, self.data_port, self.state_port, self.logging_port}
            found = _exposed(ports)
            if not found:
                return
            what = f"the direct runner's Fn API servers listen on {', '.join(found)}, beyond 127.0.0.1"
            if _ALLOW_EXPOSED:
                print(f"warning: {what} (--allow-exposed-runner)", file=sys.stderr)
                return
            self.close()
            from meshline.runners.loopback import refusal

            raise RunnerError(refusal(what))

    _LoopbackGrpcServer.__name__ = _LoopbackGrpcServer.__qualname__ = "GrpcServer"
    return _LoopbackGrpcServer


def _exposed(ports: set[int]) -> list[str]:
    """The addresses beyond loopback on which this process listens on one of ``ports``."""
    from meshline.runners import listeners

    if not listeners.supported():
        return []
    mine = listeners.listeners([os.getpid()])
    return sorted({x.address for x in mine if x.port in ports and not x.loopback})


# --------------------------------------------------------------------------- worker processes

_ZYGOTES: dict[int, _Zygote] = {}
_KEYS = itertools.count(1)


class _Zygote:
    """The meshline side of a zygote (:func:`meshline.runners.direct_worker.zygote`): asks it for workers."""

    def __init__(self, pid: int, channel: socket.socket, process: Any = None):
        self.key = next(_KEYS)
        self.pid = pid
        self._process = process  # a zygote started as a command: its Popen
        self._channel = channel
        self._ids = itertools.count(1)
        self._answers: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._read, name="meshline-zygote", daemon=True).start()

    @classmethod
    def start(cls) -> _Zygote | None:
        """A zygote (None where there is no ``fork``: workers are then started as commands).

        It is forked from this process when that is safe (:func:`_forkable`): Beam and what
        the run imported are then in place, and shared with every worker. A process with
        other Python threads is not forked: a lock one of them holds would stay locked in the
        copy, and pools that hand work to their threads (Beam's shared executor; gRPC's, which
        cannot be forked once started: ``GRPC_ENABLE_FORK_SUPPORT`` is off) would hand it to
        threads the copy does not have. The zygote is then a new Python process, which
        imports Beam once for all the workers.
        """
        if not sys.platform.startswith("linux"):
            return None
        ours, theirs = socket.socketpair()
        parent = os.getpid()
        if not _forkable():
            import subprocess

            with theirs:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "meshline.runners.direct_worker",
                        str(parent),
                        f"--zygote-fd={theirs.fileno()}",
                    ],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                )
            made = cls(process.pid, ours, process)
        else:
            pid = os.fork()
            if pid == 0:  # the zygote: never returns
                ours.close()
                from meshline.runners.direct_worker import zygote

                zygote(theirs, parent)
            theirs.close()
            made = cls(pid, ours)
        _ZYGOTES[made.key] = made
        return made

    @property
    def closed(self) -> bool:
        return self._closed

    def preload(self, modules: list[str]) -> None:
        """The modules the zygote imports (those it does not have yet) before it forks a worker."""
        with self._lock:
            self._channel.sendall(json.dumps({"preload": modules}).encode() + b"\n")

    def spawn(self, env: dict[str, str]) -> tuple[int, queue.Queue[dict[str, Any]]]:
        """Fork a worker with ``env``: its pid and where its exit status will arrive."""
        answers: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._lock:
            if self._closed:
                raise RuntimeError("the zygote is closed")
            request = next(self._ids)
            self._answers[request] = answers
            self._channel.sendall(json.dumps({"id": request, "env": env}).encode() + b"\n")
        started = answers.get()
        if "pid" not in started:
            raise RuntimeError(f"the zygote could not start a worker: {started}")
        return int(started["pid"]), answers

    def _read(self) -> None:
        pending = b""
        while True:
            try:
                data = self._channel.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                answer = json.loads(line)
                with self._lock:
                    waiting = self._answers.get(answer["id"])
                if waiting is not None:
                    waiting.put(answer)
        with self._lock:  # the zygote is gone: no worker of it will say more
            for waiting in self._answers.values():
                waiting.put({"exit": "the zygote ended"})

    def close(self) -> None:
        """No more workers: the zygote ends once those it started have."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            _ZYGOTES.pop(self.key, None)
        try:
            self._channel.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        threading.Thread(target=self._reap, name="meshline-zygote-reap", daemon=True).start()

    def _reap(self) -> None:
        try:
            if self._process is not None:
                self._process.wait()
            else:
                os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self._channel.close()


#: The names Linux gives gRPC core's threads (``/proc/PID/task/TID/comm``, cut at 15 characters).
_GRPC_THREADS = ("event_engine", "lifeguard", "grpc_global_tim", "default-executo", "resolver-execu")


def _forkable() -> bool:
    """Whether this process can be copied by ``fork`` for a zygote: no thread of Python's but this
    one, and gRPC never started (its threads are running, or were: the timer thread stays).

    Libraries' own native threads may run (OpenBLAS's from numpy, jemalloc's from pyarrow):
    they prepare for ``fork`` themselves (``pthread_atfork``).
    """
    if threading.active_count() > 1:
        return False
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return False
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/comm", encoding="utf-8", errors="replace") as f:
                if f.read().strip().startswith(_GRPC_THREADS):
                    return False
        except OSError:
            continue
    return True


def _zygote_of(command: str) -> _Zygote | None:
    found = _ZYGOTE_FLAG.search(command)
    return _ZYGOTES.get(int(found.group(1))) if found else None


def _forked_sdk_worker(base: type) -> type:
    """Beam's ``SubprocessSdkWorker``, whose worker is forked from the run's zygote when it has one."""

    class SubprocessSdkWorker(base):  # type: ignore[misc,valid-type]
        def run(self) -> None:
            zygote = _zygote_of(self._worker_command_line)
            if zygote is None:
                return super().run()  # type: ignore[no-any-return]
            import grpc
            from apache_beam.portability.api import beam_fn_api_pb2_grpc, endpoints_pb2
            from apache_beam.runners.portability.local_job_service import BeamFnLoggingServicer
            from apache_beam.utils import thread_pool_executor
            from google.protobuf import json_format, text_format

            # As Beam's run(), with the worker forked instead of started by a shell.
            options = [("grpc.http2.max_pings_without_data", 0), ("grpc.http2.max_ping_strikes", 0)]
            logging_server = grpc.server(thread_pool_executor.shared_unbounded_instance(), options=options)
            logging_port = logging_server.add_insecure_port(f"{LOOPBACK}:0")
            beam_fn_api_pb2_grpc.add_BeamFnLoggingServicer_to_server(BeamFnLoggingServicer(), logging_server)
            logging_server.start()
            try:
                env = dict(
                    os.environ,
                    CONTROL_API_SERVICE_DESCRIPTOR=text_format.MessageToString(
                        endpoints_pb2.ApiServiceDescriptor(url=self._control_address)
                    ),
                    LOGGING_API_SERVICE_DESCRIPTOR=text_format.MessageToString(
                        endpoints_pb2.ApiServiceDescriptor(url=f"localhost:{logging_port}")
                    ),
                    PIPELINE_OPTIONS=json_format.MessageToJson(
                        self._provision_info.provision_info.pipeline_options
                    ),
                )
                if self._worker_id:
                    env["WORKER_ID"] = self._worker_id
                _, answers = zygote.spawn(env)
                status = answers.get()["exit"]
                if status:
                    raise RuntimeError(f"Worker subprocess exited with return code {status}")
            finally:
                logging_server.stop(0)

    return SubprocessSdkWorker
