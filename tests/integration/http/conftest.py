"""HTTP test harness: a scripted HTTP server on 127.0.0.1, and webhook sources on free ports."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from meshline.config import parse_config
from meshline.connectors.http.source import HttpSourceConfig, _WebhookReader
from tests.integration.http.support import free_port


@pytest.fixture
def webhook():
    """``make(**config)`` → (reader, url): the reader a pipeline's source holds, on a free port."""
    readers = []

    def make(**config):
        config.setdefault("port", free_port())
        c = parse_config(HttpSourceConfig, config, where="test")
        r = _WebhookReader(c)
        readers.append(r)
        return r, f"http://127.0.0.1:{c.port}{c.path}"

    yield make
    for r in readers:
        r.close()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() when it arrived


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Endpoint:
    url: str
    requests: list[Request] = field(default_factory=list)
    # the test sets this: request → (status, headers, body)
    respond: Callable[[Request], Reply] = lambda r: (200, {}, b"")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, pred: Callable[[Request], bool]) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if pred(r)]


@pytest.fixture
def endpoint():
    state: dict[str, Endpoint] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def _handle(self):
            ep = state["ep"]
            n = int(self.headers.get("Content-Length") or 0)
            req = Request(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(n) if n else b"",
                time.monotonic(),
            )
            with ep.lock:
                ep.requests.append(req)
            status, headers, body = ep.respond(req)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        do_POST = _handle
        do_PUT = _handle

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["ep"] = Endpoint(f"http://127.0.0.1:{server.server_address[1]}/hook")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state["ep"]
    server.shutdown()
    server.server_close()
