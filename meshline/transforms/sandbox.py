"""Child processes for code that Meshline cannot stop inside its own process.

A jq program that only libjq runs (C code behind ``jq.py``) and a ``python`` step (the
user's code: a ``time.sleep``, a blocking socket read, a loop in C) cannot be interrupted
from Python: a thread cannot be killed, and a C call that holds the GIL keeps even the
signal handlers from running, so Ctrl-C and SIGTERM did nothing. Such code runs in a
:class:`Child` process instead. The caller waits for each reply with a deadline; past it,
the child is killed (SIGKILL) and :class:`ChildTimeout` raised, and the next call starts a
new child.

Children come from multiprocessing's ``forkserver``, started once per Meshline process
with :mod:`meshline.events` and ``jq`` already imported, so a child starts in tens of
milliseconds (importing Beam anew would take seconds) and is never forked from a process
with gRPC threads. Each child inherits the parent's ``sys.path`` and working directory
(multiprocessing's preparation data), ignores SIGINT (Ctrl-C reaches the whole process
group; Meshline decides what to do), asks Linux to kill it when the fork server dies
(the fork server leaves when Meshline does, however Meshline dies), and leaves when its
pipe closes.

A child does not run the parent's ``__main__`` again (multiprocessing would: a script
without an ``if __name__ == "__main__"`` guard would start over in every child).

Messages are pickles: both ends are Meshline, and events (with ``bytes`` data, integers
beyond 64 bits in jq outputs) cross unchanged.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import select
import signal
import struct
import sys
import threading
from collections.abc import Callable
from multiprocessing import context, forkserver, popen_forkserver, reduction, spawn, util
from typing import Any

__all__ = ["Child", "ChildDied", "ChildTimeout", "Pool"]

#: How long a child may take to start (fork, imports, loading a python step's module).
START_TIMEOUT = 120.0

_PRELOAD = ["meshline.transforms.sandbox", "meshline.events", "jq", "orjson"]
_context: Any = None
_context_lock = threading.Lock()


class ChildTimeout(Exception):
    """The child did not reply in time; it was killed."""


class ChildDied(Exception):
    """The child exited (or was killed from outside) before it replied."""


def _ctx() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
            _context = ctx
        return _context


class _Popen(popen_forkserver.Popen):  # type: ignore[misc]
    """multiprocessing's forkserver launch, without the instruction to re-run ``__main__``."""

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_name", None)
        prep_data.pop("init_main_from_path", None)
        buf = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))  # type: ignore[attr-defined]
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _Process(context.ForkServerProcess):  # type: ignore[misc]
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _Popen(process_obj)


_CHUNK = 1 << 16


class Child:
    """One child process running ``main(conn, arg)``: requests in, replies out, with deadlines.

    ``main`` must send one message once it is ready (``b"+"``) or could not start
    (``b"!"`` + the reason, which :meth:`start` raises as ``error_type``).
    """

    def __init__(self, main: Callable[[Any, Any], None], arg: Any) -> None:
        ctx = _ctx()
        self._conn, child_conn = ctx.Pipe()
        self._process = _Process(target=main, args=(child_conn, arg), daemon=True, name="meshline-sandbox")
        self._process.start()
        child_conn.close()
        self.alive = True
        # multiprocessing's Connection.poll builds a selector per call (~20 µs): one poll object
        self._poller = select.poll()
        self._poller.register(self._conn.fileno(), select.POLLIN)
        # Replies are read in chunks and split here (multiprocessing's framing: a 4-byte
        # big-endian length, or -1 and an 8-byte one): a child that is ahead costs one read for
        # several replies instead of a poll and two reads each.
        self._buffer = bytearray()

    def start(self, error_type: type[Exception] = RuntimeError) -> None:
        """Wait for the child's first message: ready, or the reason it could not start."""
        reply = self.recv_raw(START_TIMEOUT)
        if reply[:1] == b"!":
            self.kill()
            raise error_type(reply[1:].decode("utf-8", "replace"))

    def send(self, value: Any) -> None:
        self.send_raw(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))

    def send_raw(self, data: bytes) -> None:
        try:
            self._conn.send_bytes(data)
        except (OSError, ValueError):
            raise ChildDied(self._ended()) from None

    def ready(self) -> bool:
        """A reply is waiting (reading it will not block)."""
        return self._frame_end() > 0 or self._wait(0)

    def _frame_end(self) -> int:
        """Where the first whole reply in the buffer ends (0: there is none yet)."""
        buf = self._buffer
        if len(buf) < 4:
            return 0
        (n,) = struct.unpack_from("!i", buf)
        start = 4
        if n == -1:
            if len(buf) < 12:
                return 0
            (n,) = struct.unpack_from("!Q", buf, 4)
            start = 12
        end = start + n
        return end if len(buf) >= end else 0

    def _wait(self, timeout: float | None) -> bool:
        """Whether a reply (or the end of the pipe) came within ``timeout`` seconds."""
        ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        return bool(self._poller.poll(ms))

    def recv(self, timeout: float | None) -> Any:
        """The next reply (unpickled), waiting at most ``timeout`` seconds (``None``: no limit)."""
        return pickle.loads(self.recv_raw(timeout))

    def recv_raw(self, timeout: float | None) -> bytes:
        buf = self._buffer
        try:
            while not (end := self._frame_end()):
                if not self._wait(timeout):
                    self.kill()
                    raise ChildTimeout()
                chunk = os.read(self._conn.fileno(), _CHUNK)
                if not chunk:
                    raise EOFError
                buf += chunk
            header = 12 if buf[:4] == b"\xff\xff\xff\xff" else 4
            reply = bytes(buf[header:end])
            del buf[:end]
            return reply
        except (EOFError, OSError):
            raise ChildDied(self._ended()) from None
        except BaseException:
            # KeyboardInterrupt, or the run is stopping: the reply would come unasked for
            self.kill()
            raise

    def _ended(self) -> str:
        self.kill()
        code = self._process.exitcode
        if code is None:
            return "its process ended"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"its process was killed by {name}"
        return f"its process exited with status {code}"

    def kill(self) -> None:
        """Stop the child at once (SIGKILL) and reap it."""
        self.alive = False
        p = self._process
        try:
            if p.exitcode is None:
                p.kill()
            p.join(5)
        except (OSError, ValueError, AssertionError):
            pass
        try:
            self._conn.close()
        except OSError:
            pass

    def close(self) -> None:
        """Let the child leave (its pipe closes); kill it if it does not within a second."""
        if not self.alive:
            return
        self.alive = False
        try:
            self._conn.close()
        except OSError:
            pass
        p = self._process
        try:
            p.join(1)
            if p.exitcode is None:
                p.kill()
                p.join(5)
        except (OSError, ValueError, AssertionError):
            pass


class Pool:
    """Idle children of one kind, shared by threads: a call takes one, gives it back when done.

    A child that timed out or died is not given back, so a stuck call never holds up another.
    """

    def __init__(self, main: Callable[[Any, Any], None], arg: Any = None, keep: int = 4) -> None:
        self._main = main
        self._arg = arg
        self._keep = keep
        self._idle: list[Child] = []
        self._lock = threading.Lock()

    def acquire(self) -> Child:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        child = Child(self._main, self._arg)
        child.start()
        return child

    def release(self, child: Child) -> None:
        if not child.alive:
            return
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(child)
                return
        child.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.close()


# --------------------------------------------------------------------------- in the child


def become_child() -> None:
    """First thing a child does: ignore Ctrl-C, die with the fork server (Linux).

    multiprocessing hands each child the fork server's "alive" pipe and the resource
    tracker's pipe, which keep both alive as long as the child: closed here, the fork
    server leaves when Meshline does, and takes its children with it.
    """
    from multiprocessing import resource_tracker

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the parent starts it as a daemon (ended at the parent's exit); user code may still
    # start processes of its own
    multiprocessing.current_process()._config["daemon"] = False  # type: ignore[attr-defined]
    server: Any = forkserver._forkserver
    tracker: Any = resource_tracker._resource_tracker
    for holder, attr in ((server, "_forkserver_alive_fd"), (tracker, "_fd")):
        fd = getattr(holder, attr, None)
        if fd is not None:
            setattr(holder, attr, None)
            try:
                os.close(fd)
            except OSError:
                pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() == 1:  # the fork server is already gone
            os._exit(1)


def limit_memory(extra: int) -> None:
    """Let this process allocate at most ``extra`` more bytes of data (Linux ``RLIMIT_DATA``)."""
    try:
        import resource

        with open(f"/proc/{os.getpid()}/statm") as fh:
            data_pages = int(fh.read().split()[5])  # data + stack
        limit = data_pages * os.sysconf("SC_PAGE_SIZE") + extra
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    except (OSError, ValueError, ImportError, IndexError):
        pass


def reply(conn: Any, value: Any) -> None:
    conn.send_bytes(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


def requests(conn: Any) -> Any:
    """The requests a child receives, unpickled, until its pipe closes."""
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        yield pickle.loads(data)
