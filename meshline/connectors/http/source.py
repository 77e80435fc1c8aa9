"""``http`` source: a webhook that answers 2xx only once its events are committed.

Accepts CloudEvents in binary, structured and batch mode, and any other POST
(plain JSON, text, bytes) wrapped as a ``dev.meshline.http.request`` event
(id = the ``ce-id`` header or a UUID, source = ``http://HOST:PORT/PATH``,
``datacontenttype`` from the request, data = the body).

How a request is answered (at least once, end to end):

1. the server thread checks path, auth (basic or bearer; 401), size (413 above
   ``max_body_bytes``) and shape: a broken CloudEvent or JSON body that says it
   is JSON but is not gets **400 with the reason** and never enters the pipeline
   — rejected at the door, so the sender knows and nothing is lost silently;
2. it enqueues the events with a completion and the request waits;
3. the source's splittable DoFn (:mod:`meshline.connectors.unbounded`) pulls
   them from the in-process queue and emits them; Beam's **bundle finalizer**
   runs after the runner committed the bundle and completes the request:
   **202 Accepted**;
4. a request whose bundle fails, or that is not committed within
   ``ack_timeout``, gets **503** with ``Retry-After`` — the sender retries
   (a late commit then means a duplicate, never a loss).

One server per worker process, bound in the reader: only one process can own
the port, so this source is for single-worker runners (direct, prism, flink
``[local]``). It binds ``127.0.0.1`` by default; set ``host: 0.0.0.0`` to accept
requests from other machines.
"""

from __future__ import annotations

import hmac
import http.server
import itertools
import logging
import queue
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meshline.config import Duration, doc
from meshline.connectors.http.client import auth_headers
from meshline.connectors.unbounded import Message, ReadFromQueue
from meshline.errors import EventError
from meshline.events import CloudEvent, decode_data, from_http
from meshline.registry import BuildContext, Component

__all__ = ["REQUEST_TYPE", "SOURCE", "HttpSourceConfig", "request_to_events"]

_LOGGER = logging.getLogger(__name__)
REQUEST_TYPE = "dev.meshline.http.request"


@dataclass(frozen=True, kw_only=True)
class HttpSourceConfig:
    """Receive events over HTTP (a webhook); a 2xx reply means the events were committed."""

    port: int = doc("TCP port to listen on")
    path: str = doc("URL path events are POSTed to", "/")
    host: str = doc("bind address; 0.0.0.0 accepts requests from other machines", "127.0.0.1")
    username: str | None = doc("require basic auth with this user name", None)
    password: str | None = doc("basic auth password (secret)", None, secret=True)
    token: str | None = doc("require 'Authorization: Bearer TOKEN' (secret)", None, secret=True)
    max_body_bytes: int = doc("larger requests get 413", 1048576)
    ack_timeout: Duration = doc(
        "how long a request waits for its events to be committed before it gets 503", Duration(30)
    )
    type: str = doc("event type of requests that are not CloudEvents", REQUEST_TYPE)
    max_events: int | None = doc("end the source after this many events (0: never)", None)
    idle_timeout: Duration | None = doc(
        "end the source after this long without a request, e.g. 30s (0: never)", None
    )
    batch: int = doc("events per bundle at most", 100)

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: must be between 1 and 65535, got {self.port}")
        if not self.path.startswith("/"):
            raise ValueError(f"path: must start with '/', got {self.path!r}")
        if self.password is not None and self.username is None:
            raise ValueError("password: needs username (basic auth)")
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes: must be >= 1, got {self.max_body_bytes}")
        if self.max_events is not None and self.max_events < 0:
            raise ValueError(f"max_events: must be >= 0, got {self.max_events}")
        if not 1 <= self.batch <= 10000:
            raise ValueError(f"batch: must be between 1 and 10000, got {self.batch}")

    @property
    def source_uri(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        return f"http://{host}:{self.port}{self.path}"


def request_to_events(
    headers: dict[str, str], body: bytes, *, source: str, type_: str = REQUEST_TYPE
) -> list[CloudEvent]:
    """The events in one request; raises :class:`EventError` for a broken one (→ 400)."""
    h = {k.lower(): v for k, v in headers.items()}
    events = from_http(h, body)
    if events is not None:
        return events
    ct = h.get("content-type") or None
    attrs: dict[str, Any] = {
        "specversion": "1.0",
        "id": h.get("ce-id") or str(uuid.uuid4()),
        "source": source,
        "type": type_,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if ct:
        attrs["datacontenttype"] = ct
    return [CloudEvent(attrs, decode_data(body, ct))]


# --------------------------------------------------------------------------- server


class _Pending:
    """One request waiting for its ``n`` events to be committed."""

    __slots__ = ("done", "expired", "left", "lock")

    def __init__(self, n: int):
        self.left = n
        self.done = threading.Event()
        self.expired = False
        self.lock = threading.Lock()

    def ack_one(self) -> None:
        with self.lock:
            self.left -= 1
            if self.left <= 0:
                self.done.set()


class _Server:
    """The HTTP server of one (host, port), shared by every reader in this process."""

    def __init__(self, config: HttpSourceConfig):
        self.config = config
        self.queue: queue.Queue[tuple[CloudEvent, _Pending]] = queue.Queue(maxsize=10000)
        self.unacked: dict[str, tuple[_Pending, float]] = {}
        self.ids = itertools.count()
        self.lock = threading.Lock()
        self.refs = 0
        self.closing = False
        self.source = config.source_uri
        self.expected_auth = auth_headers(config.username, config.password, config.token).get("authorization")
        handler = type("_Handler", (_Handler,), {"server_state": self})
        self.httpd = _HTTPServer((config.host, config.port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="meshline-webhook", daemon=True)
        self.thread.start()
        _LOGGER.info("webhook listening on %s", self.source)

    def shutdown(self) -> None:
        self.closing = True
        self.httpd.shutdown()
        self.httpd.server_close()
        # Everything not committed yet: its requests answer 503 now (their senders retry).
        while True:
            try:
                _, pending = self.queue.get_nowait()
            except queue.Empty:
                break
            pending.expired = True
            pending.done.set()
        with self.lock:
            for pending, _ in self.unacked.values():
                pending.expired = True
                pending.done.set()
            self.unacked.clear()


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _Handler(http.server.BaseHTTPRequestHandler):
    server_state: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        _LOGGER.debug("webhook: " + format, *args)

    def _reply(self, status: int, text: str = "", headers: dict[str, str] | None = None) -> None:
        body = (text + "\n").encode() if text else b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_OPTIONS(self) -> None:
        origin = self.headers.get("WebHook-Request-Origin")
        headers = {"Allow": "POST, OPTIONS"}
        if origin:
            headers["WebHook-Allowed-Origin"] = origin
        self._reply(200, "", headers)

    def do_GET(self) -> None:
        self._reply(405, "POST events here", {"Allow": "POST, OPTIONS"})

    def do_PUT(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        s = self.server_state
        c = s.config
        if self.path.split("?", 1)[0] != c.path:
            self._reply(404, f"no webhook at this path; POST to {c.path}")
            return
        if s.expected_auth is not None:
            got = self.headers.get("Authorization") or ""
            if not hmac.compare_digest(got.encode(), s.expected_auth.encode()):
                scheme = "Bearer" if c.token else 'Basic realm="meshline"'
                self.close_connection = True
                self._reply(401, "unauthorized", {"WWW-Authenticate": scheme})
                return
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked" or length_header is None:
            self.close_connection = True
            self._reply(411, "Content-Length required")
            return
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            self._reply(400, "bad Content-Length")
            return
        if length > c.max_body_bytes:
            self.close_connection = True
            self._reply(413, f"body of {length} bytes is over the limit of {c.max_body_bytes}")
            return
        body = self.rfile.read(length) if length else b""
        if s.closing:
            self._reply(503, "shutting down", {"Retry-After": "1"})
            return
        try:
            events = request_to_events(dict(self.headers.items()), body, source=s.source, type_=c.type)
        except EventError as e:
            self._reply(400, f"not accepted: {e}")
            return
        if not events:
            self._reply(202)
            return
        pending = _Pending(len(events))
        try:
            for event in events:
                s.queue.put_nowait((event, pending))
        except queue.Full:
            pending.expired = True  # whatever was queued is skipped when pulled
            self._reply(503, "busy", {"Retry-After": "1"})
            return
        committed = pending.done.wait(float(c.ack_timeout))
        if committed and not pending.expired:
            self._reply(202)
        else:
            pending.expired = True
            self._reply(503, "not committed in time; retry", {"Retry-After": "1"})


# --------------------------------------------------------------------------- reader

_SERVERS: dict[tuple[str, int], _Server] = {}
_SERVERS_LOCK = threading.Lock()


def _acquire(config: HttpSourceConfig) -> _Server:
    key = (config.host, config.port)
    with _SERVERS_LOCK:
        server = _SERVERS.get(key)
        if server is None:
            server = _SERVERS[key] = _Server(config)
        elif server.config != config:
            raise ValueError(
                f"port {config.port}: already served by another http source (path {server.config.path}); "
                "give each http source its own port"
            )
        server.refs += 1
        return server


def _release(server: _Server) -> None:
    key = (server.config.host, server.config.port)
    with _SERVERS_LOCK:
        server.refs -= 1
        if server.refs > 0:
            return
        _SERVERS.pop(key, None)
    server.shutdown()


class _WebhookReader:
    def __init__(self, config: HttpSourceConfig):
        self._server = _acquire(config)
        self._closed = False

    def pull(self, max_messages: int, timeout: float) -> Sequence[Message]:
        s = self._server
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(out) < max_messages:
            try:
                if out:
                    event, pending = s.queue.get_nowait()
                else:
                    event, pending = s.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if pending.expired:
                continue  # its request already got 503: the sender will retry
            ack_id = str(next(s.ids))
            now = time.time()
            with s.lock:
                s.unacked[ack_id] = (pending, now)
            out.append(Message(ack_id, event, now))
        if out:
            self._forget_expired()
        return out

    def _forget_expired(self) -> None:
        s = self._server
        horizon = time.time() - 2 * float(s.config.ack_timeout) - 60
        with s.lock:
            stale = [k for k, (p, t) in s.unacked.items() if p.expired and t < horizon]
            for k in stale:
                del s.unacked[k]

    def ack(self, ack_ids: Sequence[str]) -> None:
        s = self._server
        with s.lock:
            pendings = [s.unacked.pop(i, (None, 0.0))[0] for i in ack_ids]
        for p in pendings:
            if p is not None:
                p.ack_one()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release(self._server)


class _MakeReader:
    """Picklable factory: the server starts on the worker, in ``setup()``."""

    def __init__(self, config: HttpSourceConfig):
        self._config = config

    def __call__(self) -> _WebhookReader:
        return _WebhookReader(self._config)


def build(config: HttpSourceConfig, ctx: BuildContext) -> ReadFromQueue:
    return ReadFromQueue(
        _MakeReader(config),
        source_name=ctx.name,
        max_events=config.max_events or None,  # 0: never
        idle_timeout=float(config.idle_timeout) if config.idle_timeout else None,
        batch=config.batch,
        poll=0.2,
    )


SOURCE = Component(
    id="http",
    kind="source",
    config=HttpSourceConfig,
    build=build,
    description="Webhook: receives CloudEvents and JSON posts; answers 202 once the events are committed.",
    unbounded=True,
)
