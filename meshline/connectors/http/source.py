"""``http`` source: a webhook that answers 2xx only once its events are committed.

Accepts CloudEvents in binary, structured and batch mode, and any other POST
(plain JSON, text, bytes) wrapped as a ``dev.meshline.http.request`` event
(id = the ``ce-id`` header or a UUID, source = ``http://HOST:PORT/PATH``,
``datacontenttype`` from the request, data = the body).

How a request is answered (at least once, end to end):

1. the server (:mod:`meshline.connectors.http.server`: strict framing, deadlines,
   connection and in-flight caps) refuses what is malformed, too slow or too
   big before the body is read; then auth (basic or bearer; 401 for every
   method), path (404), method (405 but for POST and the ``OPTIONS`` webhook
   handshake) and shape: a broken CloudEvent or JSON body that says it is JSON
   but is not gets **400 with the reason** and never enters the pipeline —
   rejected at the door, so the sender knows and nothing is lost silently;
2. it enqueues the events with a completion and the request waits;
3. the source's splittable DoFn (:mod:`meshline.connectors.unbounded`) pulls
   them from the in-process queue and emits them; Beam's **bundle finalizer**
   runs after the runner committed the bundle and completes the request:
   **202 Accepted**;
4. a request whose bundle fails, or that is not committed within
   ``ack_timeout``, gets **503** with ``Retry-After`` — the sender retries
   (a late commit then means a duplicate, never a loss).

Refusals are counted per kind as the Beam counters ``source.NAME.http.KIND``
(the run's summary lists them) and logged once per kind, then as counts at
most once a minute — no traceback, no body, no header value.

One server per worker process, bound in the reader: only one process can own
the port, so this source is for single-worker runners (direct, prism, flink
``[local]``). It binds ``127.0.0.1`` by default; set ``host: 0.0.0.0`` to accept
requests from other machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from meshline.bindings import decode_data, from_http
from meshline.connectors.http.client import auth_headers
from meshline.connectors.http.server import HttpServer, Limits, Request, Response
from meshline.connectors.http.source_config import REQUEST_TYPE, SOURCE, HttpSourceConfig
from meshline.connectors.queues import Message
from meshline.errors import EventError
from meshline.events import CloudEvent
from meshline.registry import BuildContext

if TYPE_CHECKING:
    from meshline.connectors.unbounded import ReadFromQueue

__all__ = ["REQUEST_TYPE", "SOURCE", "HttpSourceConfig", "request_to_events"]

_LOGGER = logging.getLogger(__name__)


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


#: What the source counts besides the server's own kinds (see ``server.KINDS``).
_KINDS = {
    "unauthorized": "request without valid credentials (401)",
    "not_found": "request for another path (404)",
    "method_not_allowed": "method other than POST or OPTIONS (405)",
    "length_required": "POST without Content-Length or chunked body (411)",
    "broken_event": "broken CloudEvent, or a body that says JSON but is not (400)",
    "queue_full": "event queue full (503)",
    "not_committed": "events not committed within ack_timeout (503; the sender retries)",
}
_ALLOW = {"Allow": "POST, OPTIONS"}
_RETRY = {"Retry-After": "1"}


class _Pending:
    """One request waiting for its ``n`` events to be committed (resolved from any thread)."""

    __slots__ = ("expired", "future", "left", "lock", "loop")

    def __init__(self, n: int, loop: asyncio.AbstractEventLoop):
        self.left = n
        self.expired = False
        self.lock = threading.Lock()
        self.loop = loop
        self.future: asyncio.Future[bool] = loop.create_future()

    def ack_one(self) -> None:
        with self.lock:
            self.left -= 1
            done = self.left == 0
        if done:
            self._resolve(True)

    def expire(self) -> None:
        """Its request answers 503 (the sender retries); its events still queued are skipped."""
        self.expired = True
        self._resolve(False)

    def _resolve(self, committed: bool) -> None:
        with contextlib.suppress(RuntimeError):  # the server's loop has ended: nobody waits
            self.loop.call_soon_threadsafe(_settle, self.future, committed)


def _settle(future: asyncio.Future[bool], committed: bool) -> None:
    if not future.done():
        future.set_result(committed)


class _Server:
    """The webhook of one (host, port), shared by every reader in this process."""

    def __init__(self, config: HttpSourceConfig):
        self.config = config
        self.queue: queue.Queue[tuple[CloudEvent, _Pending]] = queue.Queue(maxsize=10000)
        self.unacked: dict[str, tuple[_Pending, float]] = {}
        self.ids = itertools.count()
        self.lock = threading.Lock()
        self.refs = 0
        self.closing = False
        self.published: dict[str, int] = {}  # counts already handed to Beam metrics
        self.source = config.source_uri
        expected = auth_headers(config.username, config.password, config.token).get("authorization")
        self.expected_auth = expected.encode() if expected is not None else None
        self.challenge = "Bearer" if config.token else 'Basic realm="meshline"'
        self.origins = {o.strip().lower(): o.strip() for o in config.allowed_origins}
        limits = Limits(
            max_body_bytes=config.max_body_bytes,
            header_timeout=float(config.header_timeout),
            body_timeout=float(config.body_timeout),
            keepalive_timeout=float(config.keepalive_timeout),
            max_connections=config.max_connections,
            max_in_flight=config.max_in_flight,
        )
        try:
            name = f"webhook {self.source}"
            self.http = HttpServer(
                config.host, config.port, self.handle, limits, name=name, extra_kinds=_KINDS
            )
        except OSError as e:
            where = f"{config.host}:{config.port}"
            raise OSError(e.errno, f"http source: cannot listen on {where}: {e.strerror}") from None
        self.http.start()
        _LOGGER.info("webhook listening on %s", self.source)

    async def handle(self, request: Request) -> Response:
        c = self.config
        note = self.http.note
        if self.expected_auth is not None:
            got = request.headers.get("authorization", "").encode("latin-1")
            if not hmac.compare_digest(got, self.expected_auth):
                note("unauthorized")
                return Response(401, "unauthorized", {"WWW-Authenticate": self.challenge}, close=True)
        if request.path != c.path:
            note("not_found")
            return Response(404, f"no webhook at this path; POST to {c.path}")
        if request.method == "OPTIONS":
            return self._handshake(request)
        if request.method != "POST":
            note("method_not_allowed")
            return Response(405, "POST events here", dict(_ALLOW))
        if self.closing:
            return Response(503, "shutting down", dict(_RETRY), close=True)
        if "content-length" not in request.headers and "transfer-encoding" not in request.headers:
            note("length_required")
            return Response(411, "Content-Length (or chunked) required")
        body = await request.body()
        if self.closing:
            return Response(503, "shutting down", dict(_RETRY), close=True)
        try:
            events = request_to_events(request.headers, body, source=self.source, type_=c.type)
        except EventError as e:
            note("broken_event")
            return Response(400, f"not accepted: {e}")
        if not events:
            return Response(202)
        pending = _Pending(len(events), self.http.loop)
        try:
            for event in events:
                self.queue.put_nowait((event, pending))
        except queue.Full:
            pending.expired = True  # whatever was queued is skipped when pulled
            note("queue_full")
            return Response(503, "busy", dict(_RETRY))
        timer = self.http.loop.call_later(float(c.ack_timeout), _settle, pending.future, False)
        committed = await pending.future
        timer.cancel()
        if committed and not pending.expired:
            return Response(202)
        pending.expired = True
        if not self.closing:
            note("not_committed")
        return Response(503, "not committed in time; retry", dict(_RETRY))

    def _handshake(self, request: Request) -> Response:
        """The CloudEvents webhook validation handshake: consent only for a configured origin."""
        headers = dict(_ALLOW)
        origin = self.origins.get(request.headers.get("webhook-request-origin", "").strip().lower())
        if origin is not None:
            headers["WebHook-Allowed-Origin"] = origin
            headers["WebHook-Allowed-Rate"] = "*"
        return Response(200, "", headers)

    def shutdown(self) -> None:
        self.closing = True
        # Everything not committed yet: its requests answer 503 now (their senders retry).
        while True:
            try:
                _, pending = self.queue.get_nowait()
            except queue.Empty:
                break
            pending.expire()
        with self.lock:
            for pending, _ in self.unacked.values():
                pending.expire()
            self.unacked.clear()
        self.http.stop()


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
    def __init__(self, config: HttpSourceConfig, name: str = "http"):
        self._server = _acquire(config)
        self._name = name
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
        self._publish_counts()
        return out

    def _publish_counts(self) -> None:
        """The server's refusal counts since the last pull, as Beam counters (this is the DoFn's thread)."""
        s = self._server
        counts = s.http.counts
        with s.lock:
            delta = {k: n - s.published.get(k, 0) for k, n in counts.items() if n != s.published.get(k, 0)}
            s.published = counts
        if not delta:
            return
        from apache_beam.metrics import Metrics  # on the worker only: the config must not import Beam

        for kind, n in delta.items():
            Metrics.counter("meshline", f"source.{self._name}.http.{kind}").inc(n)

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

    def __init__(self, config: HttpSourceConfig, name: str):
        self._config = config
        self._name = name

    def __call__(self) -> _WebhookReader:
        return _WebhookReader(self._config, self._name)


def build(config: HttpSourceConfig, ctx: BuildContext) -> ReadFromQueue:
    from meshline.connectors.unbounded import ReadFromQueue

    return ReadFromQueue(
        _MakeReader(config, ctx.name),
        source_name=ctx.name,
        max_events=config.max_events or None,  # 0: never
        idle_timeout=float(config.idle_timeout) if config.idle_timeout else None,
        batch=config.batch,
        poll=0.2,
    )
