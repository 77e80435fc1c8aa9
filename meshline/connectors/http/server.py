"""The webhook's HTTP/1.1 server: strict framing, deadlines and caps, in its own thread.

Built on asyncio and h11 (which parses the request line and header fields;
:mod:`meshline.connectors.http.wire` holds the parser and body readers);
everything a hostile client could use to desynchronise a proxy in front of it,
or to tie the process up, is refused here before a handler sees the request:

- **Strict framing** → 400 before the body is read: a bare LF, bare CR or NUL
  in the head, an obs-folded line, whitespace before a colon, several
  ``Content-Length`` fields (even equal ones) or one that is not plain digits,
  ``Transfer-Encoding`` other than exactly ``chunked``, both of them at once,
  several ``Host``, ``Authorization``, ``Content-Type`` or ``ce-*`` fields, an
  ``Expect`` other than ``100-continue`` (417), an HTTP version other than 1.0
  or 1.1 (505). Chunked bodies are decoded here, strictly (sizes in hex, each
  line ending in CRLF, no trailer fields): h11 accepts bare LFs there.
- **Size**: a head over 16 KiB → 431; a body over ``max_body_bytes`` → 413,
  from ``Content-Length`` before reading, or as soon as a chunk would pass it.
- **Deadlines**, totals rather than gaps between bytes, so a client sending a
  byte a second is cut off too: the head within ``header_timeout`` (from the
  connection, or from the first byte of a later request), the body within
  ``body_timeout`` of the head → 408; an idle keep-alive connection is closed
  after ``keepalive_timeout``.
- **Caps**: at ``max_in_flight`` requests a new one gets 503 + ``Retry-After``;
  at ``max_connections`` a new connection replaces the one that has waited
  longest for a request head (idle or slow), and when every connection is busy
  with a request the server stops accepting until one ends (the kernel's
  backlog holds the rest) — the accept loop never spins. The open-files limit
  is raised to fit ``max_connections`` when the hard limit allows.

A client's mistake or a dropped connection is no traceback: each kind is
counted (:attr:`HttpServer.counts`) and logged once, then as a count at most
every :data:`LOG_INTERVAL` seconds. Request bodies and header values are never
logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import errno
import http
import logging
import os
import socket
import threading
import time

from meshline.connectors.http.wire import (
    HEAD_END,
    MAX_HEAD_BYTES,
    READ_SIZE,
    Conn,
    Dropped,
    Handler,
    Limits,
    Reject,
    Request,
    Response,
    parse_head,
)

__all__ = ["KINDS", "HttpServer", "Limits", "Request", "Response"]

_LOGGER = logging.getLogger(__name__)

LOG_INTERVAL = 60.0
LINGER = 1.0  # seconds an erroring connection drains what the client still sends, so it reads the reply
_ACCEPT_PAUSE = 0.5  # after EMFILE/ENFILE/ENOBUFS on accept
_FD_RESERVE = 64  # open files kept free for everything else in the process

#: What the server counts (and logs at most once per interval each); the source adds its own kinds.
KINDS: dict[str, str] = {
    "bad_request": "malformed or ambiguous request (400)",
    "head_too_large": "request head over 16 KiB (431)",
    "body_too_large": "body over max_body_bytes (413)",
    "header_timeout": "request head not received within header_timeout",
    "body_timeout": "body not received within body_timeout",
    "dropped": "client closed the connection in the middle of a request",
    "busy": "max_in_flight requests already in flight (503)",
    "no_request": "a connection sent nothing within header_timeout",
    "connection_limit": "max_connections reached: the longest-waiting idle connection was closed",
    "accept_failed": "accepting a connection failed (open-files limit?)",
    "internal_error": "the webhook failed on a request (500): a bug, please report it",
}


# --------------------------------------------------------------------------- logging


class _Counts:
    """Counts per kind, logged once at the first occurrence and then as counts per interval."""

    def __init__(self, name: str, kinds: dict[str, str]):
        self.name = name
        self.kinds = dict(kinds)
        self.total = dict.fromkeys(self.kinds, 0)  # fixed keys: other threads may copy it at any time
        self._unlogged = dict.fromkeys(self.kinds, 0)
        self._seen: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None

    def note(self, kind: str, loop: asyncio.AbstractEventLoop, exc_info: bool = False) -> None:
        self.total[kind] += 1
        if kind not in self._seen:
            self._seen.add(kind)
            _LOGGER.log(
                logging.ERROR if exc_info else logging.WARNING,
                "%s: %s; more are counted (%s) and reported at most every %.0fs",
                self.name,
                self.kinds[kind],
                kind,
                LOG_INTERVAL,
                exc_info=exc_info,
            )
            return
        self._unlogged[kind] += 1
        if self._timer is None:
            self._timer = loop.call_later(LOG_INTERVAL, self.flush)

    def flush(self, when: str = f"in the last {LOG_INTERVAL:.0f}s") -> None:
        self._timer = None
        parts = [f"{n} {k}" for k, n in self._unlogged.items() if n]
        if parts:
            _LOGGER.warning("%s: %s: %s", self.name, when, ", ".join(parts))
        for k in self._unlogged:
            self._unlogged[k] = 0

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush("until it stopped")


# --------------------------------------------------------------------------- server


def _fit_open_files(wanted: int) -> int:
    """How many connections the open-files limit allows (raising the soft limit toward ``wanted``)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return wanted
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = in_use + wanted + _FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - in_use - _FD_RESERVE))


class HttpServer:
    """One listening socket served by an asyncio loop in a thread of its own.

    Binds in the constructor (so a port in use fails there, in the caller's
    thread); :meth:`start` starts serving; :meth:`stop` ends it (from any thread).
    """

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        limits: Limits,
        *,
        name: str = "webhook",
        extra_kinds: dict[str, str] | None = None,
    ):
        self.limits = limits
        self.name = name
        self._handler = handler
        self._counts = _Counts(name, {**KINDS, **(extra_kinds or {})})
        self.max_connections = _fit_open_files(limits.max_connections)
        if self.max_connections < limits.max_connections:
            _LOGGER.warning(
                "%s: the open-files limit allows %d connections, not max_connections=%d (raise ulimit -n)",
                name,
                self.max_connections,
                limits.max_connections,
            )
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        # IPv4 first when a name has both ("localhost"): what http.server bound before.
        family, kind, proto, _, address = next((i for i in infos if i[0] == socket.AF_INET), infos[0])
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_error)
        self._conns: set[Conn] = set()
        self._waiting: dict[Conn, None] = {}  # waiting for a request head, oldest first: evictable
        self._in_flight = 0
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._stopped: asyncio.Event | None = None
        self._accept_task: asyncio.Future | None = None
        self._finishing: asyncio.Future | None = None
        self._room: asyncio.Event | None = None
        self._date = (0, "")
        self._thread = threading.Thread(target=self._run, name=f"meshline-{name}", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def port(self) -> int:
        """The port it listens on (the one the system chose when asked for 0)."""
        return int(self._sock.getsockname()[1])

    @property
    def counts(self) -> dict[str, int]:
        """Totals per kind since the server started (a copy; safe from any thread)."""
        return dict(self._counts.total)

    def note(self, kind: str) -> None:
        """Count one ``kind`` (call in the server's loop, e.g. from the handler)."""
        self._counts.note(kind, self._loop)

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace: float = 2.0) -> None:
        """Stop accepting, let requests in flight finish for ``grace`` seconds, close everything."""
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._begin_stop, grace)
            self._thread.join(grace + 10)
        elif not self._loop.is_closed():
            self._sock.close()
            self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._sock.close()
            self._loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        self._room = asyncio.Event()
        self._accept_task = asyncio.ensure_future(self._accept_loop())
        await self._stopped.wait()
        self._counts.cancel()

    def _begin_stop(self, grace: float) -> None:
        if self._stopping:
            return
        self._stopping = True
        if self._accept_task is not None:
            self._accept_task.cancel()
        for conn in list(self._waiting):
            conn.abort()  # idle: nothing to finish
        self._finishing = asyncio.ensure_future(self._finish(grace))

    async def _finish(self, grace: float) -> None:
        if self._accept_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._accept_task
        self._sock.close()  # after the accept task let go of it
        deadline = self._loop.time() + grace
        while self._tasks and self._loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self._conns):
            conn.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        assert self._stopped is not None
        self._stopped.set()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # a client went away: counted where it matters
        _LOGGER.error("%s: %s", self.name, context.get("message"), exc_info=exc)

    # ------------------------------------------------------------------ connections

    async def _accept_loop(self) -> None:
        loop = self._loop
        room = self._room
        assert room is not None
        while True:
            try:
                sock, _ = await loop.sock_accept(self._sock)
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.note("accept_failed")
                    await asyncio.sleep(_ACCEPT_PAUSE)
                continue
            try:
                while len(self._conns) >= self.max_connections and not self._waiting:
                    # Every connection is busy with a request: this one waits until one ends or
                    # waits for its next request, and the kernel's backlog holds the next ones.
                    room.clear()
                    await room.wait()
            except BaseException:
                sock.close()
                raise
            if len(self._conns) >= self.max_connections:
                oldest = next(iter(self._waiting))
                oldest.evicted = True
                self._drop(oldest)
                oldest.abort()
                self.note("connection_limit")
            # Take the slot now: the connection's task starts on the next loop iteration.
            conn = Conn(sock, loop.time())
            self._conns.add(conn)
            task = loop.create_task(self._connection(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            # sock_accept does not yield while connections are pending: let the new one start.
            await asyncio.sleep(0)

    def _drop(self, conn: Conn) -> None:
        self._waiting.pop(conn, None)
        if conn in self._conns:
            self._conns.discard(conn)
            assert self._room is not None
            self._room.set()

    async def _connection(self, conn: Conn) -> None:
        loop = self._loop
        try:
            reader = asyncio.StreamReader(limit=READ_SIZE, loop=loop)
            transport, protocol = await loop.connect_accepted_socket(
                lambda: asyncio.StreamReaderProtocol(reader, loop=loop), conn.sock
            )
        except OSError:
            conn.sock.close()
            self._drop(conn)
            return
        conn.reader = reader
        conn.writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        try:
            if not conn.evicted:
                await self._serve(conn)
        except Exception:  # a bug, not the client's doing: its traceback, once
            self._counts.note("internal_error", loop, exc_info=True)
        finally:
            self._drop(conn)
            if conn.evicted:
                transport.abort()
            else:
                transport.close()

    async def _serve(self, conn: Conn) -> None:
        try:
            while not self._stopping:
                raw = await self._read_head(conn, conn.accepted_at if conn.fresh else None)
                if raw is None:
                    return
                conn.fresh = False
                method, target, version, headers = parse_head(raw)
                keep_alive = version == "1.1" and "close" not in headers.get("connection", "").lower()
                expect = headers.get("expect")
                if expect is not None:
                    if expect.lower() != "100-continue":
                        raise Reject(417, "bad_request", "only 'Expect: 100-continue' is supported")
                    headers["expect"] = "100-continue"
                request = Request(self.limits, conn, method, target, headers, keep_alive)
                if self._in_flight >= self.limits.max_in_flight:
                    raise Reject(503, "busy", "too many requests in flight; retry", {"Retry-After": "1"})
                self._in_flight += 1
                try:
                    response = await self._handler(request)
                except Reject as r:
                    response = r.response
                    self.note(r.kind)
                except Dropped:
                    raise
                except Exception:  # a bug, not the client's doing: its traceback, once
                    self._counts.note("internal_error", self._loop, exc_info=True)
                    response = Response(500, "internal error", close=True)
                finally:
                    self._in_flight -= 1
                close = response.close or not keep_alive or request.body_pending or self._stopping
                await self._write(conn, response, close, head=method == "HEAD")
                if close:
                    if request.body_pending:
                        await self._linger(conn)
                    return
        except Reject as r:
            self.note(r.kind)
            await self._write(conn, r.response, True)
            await self._linger(conn)
        except Dropped:
            if not conn.evicted and not self._stopping:
                self.note("dropped")

    async def _read_head(self, conn: Conn, accepted_at: float | None) -> bytes | None:
        """The next request head (through CRLF CRLF); None when the client left or idled out.

        ``accepted_at`` is set for a connection's first request: its head is due within
        ``header_timeout`` of the accept. A later one may wait ``keepalive_timeout`` for its
        first byte, then has ``header_timeout`` for the rest.
        """
        loop = self._loop
        limits = self.limits
        if accepted_at is not None:
            deadline = accepted_at + limits.header_timeout
        else:
            deadline = loop.time() + limits.keepalive_timeout
        started = accepted_at is not None
        searched = 0
        self._waiting[conn] = None  # evictable while here
        assert self._room is not None
        self._room.set()  # an accept loop waiting for room may evict it now
        try:
            async with asyncio.timeout_at(deadline) as timeout:
                while True:
                    while conn.buf[:2] == b"\r\n":  # RFC 9112 2.2: ignore empty lines before a request
                        del conn.buf[:2]
                    if not conn.buf:
                        searched = 0
                        try:
                            await conn.fill()
                        except Dropped:
                            if started and accepted_at is None:
                                raise
                            return None  # closed without asking anything: a client's right
                        if not started:  # a kept-alive connection's next request begins
                            started = True
                            timeout.reschedule(loop.time() + limits.header_timeout)
                        continue
                    m = HEAD_END.search(conn.buf, searched)
                    if m is not None:
                        break
                    if len(conn.buf) > MAX_HEAD_BYTES:
                        raise Reject(431, "head_too_large", "request head over 16 KiB")
                    searched = max(0, len(conn.buf) - 2)
                    await conn.fill()
        except TimeoutError:
            if conn.buf or (accepted_at is None and started):
                raise Reject(408, "header_timeout", "request head not received in time") from None
            if accepted_at is not None:
                self.note("no_request")
            return None  # idle
        finally:
            self._waiting.pop(conn, None)
        end = m.end()
        if end > MAX_HEAD_BYTES:
            raise Reject(431, "head_too_large", "request head over 16 KiB")
        raw = bytes(conn.buf[:end])
        del conn.buf[:end]
        if not raw.endswith(b"\r\n\r\n"):
            raise Reject(400, "bad_request", "bare LF in the request head")
        return raw

    async def _write(self, conn: Conn, response: Response, close: bool, head: bool = False) -> None:
        body = (response.text + "\n").encode() if response.text else b""
        lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}", f"Date: {self._http_date()}"]
        lines += [f"{k}: {v}" for k, v in response.headers.items()]
        lines.append(f"Content-Type: {response.content_type}")
        lines.append(f"Content-Length: {len(body)}")
        if close:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)
        transport = conn.writer.transport
        if transport.is_closing():
            return
        transport.write(data)
        if not transport.get_write_buffer_size():
            return  # all in the kernel already: the usual case for these short replies
        try:
            async with asyncio.timeout(self.limits.body_timeout):
                await conn.writer.drain()
        except (ConnectionError, TimeoutError, RuntimeError):
            transport.abort()

    async def _linger(self, conn: Conn) -> None:
        """Half-close, then drain briefly: closing with unread input would reset the reply away."""
        transport = conn.writer.transport
        if transport.is_closing():
            return
        try:
            if transport.can_write_eof():
                transport.write_eof()
            async with asyncio.timeout(LINGER):
                got = 0
                while got < 4 * READ_SIZE:
                    data = await conn.reader.read(READ_SIZE)
                    if not data:
                        break
                    got += len(data)
        except (ConnectionError, TimeoutError, OSError):
            pass

    def _http_date(self) -> str:
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, email.utils.formatdate(now, usegmt=True))
        return self._date[1]


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
