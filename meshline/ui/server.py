"""The HTTP endpoint of a running integration: ``/metrics``, and with ``--ui`` the live page.

It runs on the webhook's hardened server (:class:`meshline.connectors.http.server.HttpServer`:
strict framing, deadlines, caps), in a thread of its own, bound to 127.0.0.1. Only ``GET``
and ``HEAD``; a request whose ``Host`` is not this loopback address and port is refused
(403), so a web page elsewhere cannot reach it through DNS rebinding; responses are not
cached and the page may run only its own scripts (``Content-Security-Policy``).

Routes (``--ui``; ``--metrics-port`` serves ``/metrics`` only):

- ``/`` , ``/app.js``, ``/app.css``: the page (static files, no build step);
- ``/api/graph``: stages and edges, as ``meshline graph`` draws them, steps as stages of
  their own; names, connector types and filters only (filters through the redactor);
- ``/api/stats``: counts per stage (the summary table's rows), latency and backlog;
- ``/api/dead-letters?after=N``: the last dead letters (stage, trigger, step, reason, event);
- ``/api/tap?stage=S[&id=ID]``: opens a tap on ``S`` (a new ``id``) or takes what the tap
  ``ID`` sampled since; a tap nobody asked for in :data:`TAP_IDLE` seconds is closed.

Event text on the page passes :func:`meshline.observe.event_json` (secrets and ``--mask``
fields masked); the page never sees a config value.
"""

from __future__ import annotations

import json
import logging
import secrets as _random
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from meshline import observe
from meshline.connectors.http.server import HttpServer
from meshline.connectors.http.wire import Limits, Request, Response
from meshline.ui.metrics import CONTENT_TYPE, exposition, live_counters, registry

if TYPE_CHECKING:
    from meshline.spec.model import Integration

__all__ = ["TAP_IDLE", "Endpoint", "graph_model"]

_LOGGER = logging.getLogger(__name__)
TAP_IDLE = 15.0  # seconds: a tap the page stopped polling is closed
_LIMITS = Limits(
    max_body_bytes=0,
    header_timeout=10.0,
    body_timeout=10.0,
    keepalive_timeout=30.0,
    max_connections=64,
    max_in_flight=32,
)
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}
_JSON = "application/json; charset=utf-8"


def _filter_label(f: dict[str, Any], redact: Callable[[str], str]) -> str:
    from meshline.graph import _filter_text

    return _filter_text(f, redact)


def graph_model(integrations: list[Integration]) -> dict[str, Any]:
    """Stages (``id`` is the tap's stage key: ``source.S``, ``trigger.T``, ``step.X``, ``target.T``)
    in columns (sources, triggers, steps, targets) and the edges between them."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, Any]] = []
    for integration in integrations:
        redact = integration.redactor.redact
        steps = {st.name: st for st in integration.transformations}
        for s in integration.sources:
            nodes[f"source.{s.name}"] = {"stage": "source", "name": s.name, "type": s.type, "column": 0}
        for trig in integration.triggers:
            nodes[f"trigger.{trig.name}"] = {
                "stage": "trigger",
                "name": trig.name,
                "type": "trigger",
                "filters": [_filter_label(f, redact) for f in trig.filters],
                "column": 1,
            }
            for source in trig.sources:
                edges.append({"from": f"source.{source}", "to": f"trigger.{trig.name}", "dead": False})
            last = f"trigger.{trig.name}"
            for i, step in enumerate(trig.steps):
                key = f"step.{step}"
                column = 2 + i
                if key in nodes:
                    nodes[key]["column"] = max(nodes[key]["column"], column)
                else:
                    kind = steps[step].type if step in steps else "step"
                    nodes[key] = {"stage": "step", "name": step, "type": kind, "column": column}
                edges.append({"from": last, "to": key, "dead": False})
                last = key
            edges.append({"from": last, "to": f"target.{trig.target}", "dead": False})
            if trig.delivery.dead_letter:
                edges.append(
                    {
                        "from": f"trigger.{trig.name}",
                        "to": f"target.{trig.delivery.dead_letter}",
                        "dead": True,
                    }
                )
        for t in integration.targets:
            nodes[f"target.{t.name}"] = {"stage": "target", "name": t.name, "type": t.type, "column": -1}
    last_column = 1 + max([n["column"] for n in nodes.values() if n["stage"] != "target"] + [0])
    for n in nodes.values():
        if n["column"] == -1:
            n["column"] = max(2, last_column)
    unique = []
    seen = set()
    for e in edges:
        edge = (e["from"], e["to"], e["dead"])
        if edge not in seen and e["from"] in nodes and e["to"] in nodes:
            seen.add(edge)
            unique.append(e)
    return {
        "integrations": [i.name for i in integrations],
        "nodes": [{"id": k, **v} for k, v in nodes.items()],
        "edges": unique,
    }


class _Taps:
    """The page's taps by id; closed when not polled for :data:`TAP_IDLE` seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taps: dict[str, tuple[observe.Tap, float]] = {}

    def poll(self, stage: str, tap_id: str) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            for k, (tap, last) in list(self._taps.items()):
                if now - last > TAP_IDLE:
                    observe.close_tap(tap)
                    del self._taps[k]
            entry = self._taps.get(tap_id)
            if entry is None or entry[0].stage != stage:
                if entry is not None:
                    observe.close_tap(entry[0])
                tap_id = _random.token_hex(8)
                entry = (observe.open_tap(stage, rate=10, keep=100), now)
            tap = entry[0]
            self._taps[tap_id] = (tap, now)
        return {"id": tap_id, "stage": stage, "seen": tap.seen, "events": tap.take()}

    def close(self) -> None:
        with self._lock:
            for tap, _ in self._taps.values():
                observe.close_tap(tap)
            self._taps.clear()


class Endpoint:
    """``/metrics`` (and the live page when ``ui``) on 127.0.0.1:``port`` (0: any free port)."""

    def __init__(
        self,
        integrations: Callable[[], list[Integration]],
        port: int,
        *,
        ui: bool,
        host: str = "127.0.0.1",
    ):
        self._integrations = integrations
        self._ui = ui
        self._registry = registry(integrations)
        self._taps = _Taps()
        self._started = time.monotonic()
        name = "live page" if ui else "metrics endpoint"
        try:
            self._http = HttpServer(host, port, self._handle, _LIMITS, name=name)
        except OSError as e:
            raise OSError(e.errno, f"{name}: cannot listen on {host}:{port}: {e.strerror}") from None
        self.port = self._http.port
        self.host = host
        self._hosts = {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]")}
        self._graph = graph_model(integrations())  # the file's stages: fixed for the run
        self._stages = {n["id"] for n in self._graph["nodes"]}
        self._static = {
            path: (resources.files("meshline.ui").joinpath("static", f).read_text("utf-8"), kind)
            for path, (f, kind) in _STATIC.items()
        }

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> Endpoint:
        self._http.start()
        return self

    def stop(self) -> None:
        self._taps.close()
        self._http.stop(grace=1.0)

    async def _handle(self, request: Request) -> Response:
        if request.headers.get("host", "").lower() not in self._hosts:
            return Response(403, "this endpoint answers requests for its loopback address only", close=True)
        if request.method not in ("GET", "HEAD"):
            return Response(405, "GET only", {"Allow": "GET, HEAD"})
        try:
            return self._route(request)
        except Exception as e:  # a report must never take the run down
            _LOGGER.warning("%s: %s: %s", request.path, type(e).__name__, e)
            return Response(500, "internal error")

    def _route(self, request: Request) -> Response:
        path = request.path
        if path == "/metrics":
            return Response(
                200, exposition(self._registry), {"Cache-Control": "no-store"}, content_type=CONTENT_TYPE
            )
        if not self._ui:
            return Response(404, "only /metrics here (the live page is meshline run --ui)")
        query = parse_qs(request.target.split("?", 1)[1]) if "?" in request.target else {}
        if path in self._static:
            text, kind = self._static[path]
            return Response(200, text, dict(_HEADERS), content_type=kind)
        if path == "/api/graph":
            return self._json(self._graph)
        if path == "/api/stats":
            return self._json(self._stats())
        if path == "/api/dead-letters":
            after = _int(query.get("after", ["0"])[0])
            return self._json({"dead_letters": observe.dead_letters(after)})
        if path == "/api/tap":
            stage = query.get("stage", [""])[0]
            if stage not in self._stages:
                return Response(404, "no such stage; stages are source.S, trigger.T, step.X, target.T")
            return self._json(self._taps.poll(stage, query.get("id", [""])[0]))
        return Response(404, "not found")

    def _stats(self) -> dict[str, Any]:
        from meshline.compiler.summary import stage_rows

        counters = live_counters()
        rows = [r for i in self._integrations() for r in stage_rows(i, counters)]
        latency = {
            target: {"count": count, "sum": total, "buckets": buckets}
            for target, (buckets, count, total) in observe.latency().items()
        }
        return {
            "seconds": round(time.monotonic() - self._started, 3),
            "stages": rows,
            "dropped": counters.get("deadletter.dropped", 0),
            "latency": latency,
            "buckets": list(observe.BUCKETS),
            "backlog": [{**labels, "value": v} for labels, v in observe.backlog()],
        }

    @staticmethod
    def _json(body: Any) -> Response:
        return Response(200, json.dumps(body, default=str), dict(_HEADERS), content_type=_JSON)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0
