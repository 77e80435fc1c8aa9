"""elasticsearch target against real nodes: OpenSearch 2.19 and Elasticsearch 8.15.

- 100,000 events (plus mapping conflicts) indexed, then the same input replayed:
  the index holds exactly one document per event; conflicts are dead-lettered
  with the server's reason.
- a 127.0.0.1 proxy that answers 429 to whole _bulk requests and marks items 429
  in others: delivery slows down (retries) and nothing is lost.
- index templates ({type}, dates), whole-event documents, a data stream with
  op_type create (a replay answers 409, which counts as delivered) — on OpenSearch
  only: the Elasticsearch test node has no x-pack, which data streams need there.
"""

from __future__ import annotations

import http.client
import shutil
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

pytestmark = pytest.mark.integration


def _request(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else orjson.dumps(body)
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as r:
        return orjson.loads(r.read())


def _count(base: str, index: str) -> int:
    _request(base, "POST", f"/{index}/_refresh")
    return int(_request(base, "GET", f"/{index}/_count")["count"])


def _write_events(path: Path, events: list[dict[str, Any]]) -> Path:
    with path.open("wb") as fh:
        fh.write(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def _order(i: int, amount: Any = None) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"o-{i}",
        "source": "/shop",
        "type": "com.example.order",
        "time": "2026-11-25T10:00:00Z",
        "data": {"n": i, "amount": i if amount is None else amount, "customer": f"c{i % 97}"},
    }


def _integration(tmp: Path, name: str, src: Path, target: str, retries: int = 3) -> Path:
    f = tmp / f"{name}.yaml"
    f.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: {name}}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{src}"}}}}
  targets:
    - name: search
      type: elasticsearch
      config: {target}
    - {{name: dlq, type: file, config: {{path: "{tmp}/dlq-{name}"}}}}
  triggers:
    - name: all
      target: search
      delivery: {{retries: {retries}, backoff: {{policy: exponential, delay: 50ms, max: 1s}}}}
  deadLetter: dlq
""")
    return f


def _dead(tmp: Path, name: str) -> list[dict[str, Any]]:
    folder = tmp / f"dlq-{name}"
    if not folder.exists():
        return []
    return [
        orjson.loads(line) for p in sorted(folder.rglob("*.jsonl")) for line in p.read_bytes().splitlines()
    ]


def _run(meshline, spec: Path) -> str:
    done = meshline("run", str(spec), "--runner", "direct", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def test_100k_events_replayed_leave_one_document_each_and_conflicts_dead_lettered(
    meshline, search_url, tmp_path
):
    opensearch_url = search_url  # either server
    index = "orders-100k"
    _request(opensearch_url, "PUT", f"/{index}", {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"},
        "mappings": {"properties": {"amount": {"type": "long"}}},
    })  # fmt: skip
    n = 100_000
    conflicts = list(range(0, n, 10_000))  # 10 documents whose amount is not a number
    events = [_order(i, "not-a-number" if i in conflicts else None) for i in range(n)]
    src = _write_events(tmp_path / "orders.jsonl", events)
    spec = _integration(tmp_path, "es100k", src, f'{{hosts: ["{opensearch_url}"], index: {index}}}')
    for run in range(2):  # the second run replays the same input
        shutil.rmtree(tmp_path / "dlq-es100k", ignore_errors=True)
        _run(meshline, spec)
        assert _count(opensearch_url, index) == n - len(conflicts), f"after run {run + 1}"
        dead = _dead(tmp_path, "es100k")
        assert len(dead) == len(conflicts)
    assert sorted({d["id"] for d in dead}) == sorted(f"o-{i}" for i in conflicts)
    for d in dead:
        assert d["meshlineerrorstage"] == "deliver"
        # OpenSearch says mapper_parsing_exception, Elasticsearch 8 document_parsing_exception
        assert "400 mapper_parsing_exception" in d["meshlineerror"] or (
            "400 document_parsing_exception" in d["meshlineerror"]
        ), d["meshlineerror"]
        assert "amount" in d["meshlineerror"]
    # the document is the event data, under the stable _id
    from meshline.connectors.elasticsearch import document_id
    from meshline.events import from_json_dict

    doc = _request(opensearch_url, "GET", f"/{index}/_doc/{document_id(from_json_dict(events[7]))}")
    assert doc["_source"] == events[7]["data"]


class _Throttler:
    """A 127.0.0.1 proxy: every 3rd _bulk request gets 429; every 4th gets its first items marked 429."""

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.bulk_requests = 0
        self.whole_429 = 0
        self.item_429 = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self, body: bytes | None) -> tuple[int, bytes]:
                conn = http.client.HTTPConnection(outer.upstream.hostname, outer.upstream.port, timeout=60)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                conn.request(self.command, self.path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                conn.close()
                return r.status, data

            def _reply(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._reply(*self._forward(None))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if not self.path.startswith("/_bulk"):
                    self._reply(*self._forward(body))
                    return
                with outer.lock:
                    outer.bulk_requests += 1
                    k = outer.bulk_requests
                if k % 3 == 0:
                    with outer.lock:
                        outer.whole_429 += 1
                    err = {"error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}
                    self._reply(429, orjson.dumps({**err, "status": 429}), {"retry-after": "0"})
                    return
                status, data = self._forward(body)
                if k % 4 == 0 and status == 200:
                    reply = orjson.loads(data)
                    for item in reply["items"][:25]:  # pretend these were rejected: they must come again
                        (outcome,) = item.values()
                        outcome.clear()
                        outcome.update(
                            status=429, error={"type": "es_rejected_execution_exception", "reason": "x"}
                        )
                        with outer.lock:
                            outer.item_429 += 1
                    reply["errors"] = True
                    data = orjson.dumps(reply)
                self._reply(status, data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Throttler:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_429_slows_delivery_down_without_losing_anything(meshline, search_url, tmp_path):
    opensearch_url = search_url  # either server
    index = "orders-throttled"
    n = 6000
    src = _write_events(tmp_path / "orders.jsonl", [_order(i) for i in range(n)])
    with _Throttler(opensearch_url) as proxy:
        target = f'{{hosts: ["{proxy.url}"], index: {index}, batch_size: 500}}'
        _run(meshline, _integration(tmp_path, "es429", src, target, retries=8))
    assert proxy.whole_429 >= 3 and proxy.item_429 >= 25  # the faults really happened
    assert _dead(tmp_path, "es429") == []
    assert _count(opensearch_url, index) == n


def test_index_templates_whole_events_and_data_streams(meshline, opensearch_url, tmp_path):
    # {type} and date placeholders; document: event
    events = [
        {
            **_order(i),
            "type": "com.example.order" if i % 2 else "com.example.refund",
            "time": f"2026-0{1 + i % 3}-15T00:00:00Z",
        }
        for i in range(60)
    ]
    src = _write_events(tmp_path / "mixed.jsonl", events)
    target = f'{{hosts: ["{opensearch_url}"], index: "ev-{{type}}-{{yyyy}}.{{mm}}", document: event}}'
    _run(meshline, _integration(tmp_path, "estpl", src, target))
    assert _dead(tmp_path, "estpl") == []
    counts = {
        f"ev-{t}-2026.0{m}": sum(1 for e in events if e["type"] == t and e["time"][5:7] == f"0{m}")
        for t in ("com.example.order", "com.example.refund")
        for m in (1, 2, 3)
    }
    for idx, expected in counts.items():
        assert _count(opensearch_url, idx) == expected, idx
    hits = _request(opensearch_url, "GET", "/ev-*/_search?size=1&q=id:o-3")["hits"]["hits"]
    assert hits[0]["_source"]["source"] == "/shop" and hits[0]["_source"]["data"]["n"] == 3

    # a data stream: op_type create, @timestamp from the event time; a replay is not an error
    _request(opensearch_url, "PUT", "/_index_template/meshline-logs", {
        "index_patterns": ["logs-meshline*"], "data_stream": {}, "priority": 500,
    })  # fmt: skip
    src2 = _write_events(tmp_path / "logs.jsonl", [_order(i) for i in range(300)])
    target = (
        f'{{hosts: ["{opensearch_url}"], index: logs-meshline, op_type: create, '
        'timestamp_field: "@timestamp"}'
    )
    spec = _integration(tmp_path, "esds", src2, target)
    for _ in range(2):
        _run(meshline, spec)
        assert _dead(tmp_path, "esds") == []
        assert _count(opensearch_url, "logs-meshline") == 300


def test_the_ready_pipeline_indexes_big_orders(meshline, opensearch_url, tmp_path):
    from tests.conftest import ROOT

    orders = _sample_orders(ROOT / "pipelines/data/orders.jsonl")
    big = [
        o
        for o in orders
        if o["type"] == "com.example.order.created"
        and o["data"]["amount"].replace(".", "").isdigit()
        and float(o["data"]["amount"]) > 100
    ]
    assert big  # the sample data has some
    done = meshline(
        "run",
        str(ROOT / "pipelines/orders-to-elasticsearch.yaml"),
        "--runner",
        "direct",
        "--param",
        f"es_url={opensearch_url}",
        "--param",
        f"rejects={tmp_path / 'rejects'}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert _count(opensearch_url, "orders-2*")  # orders-YYYY.MM: not the other tests' indices == len(big)
    hit = _request(opensearch_url, "GET", "/orders-2*/_search?size=1")["hits"]["hits"][0]["_source"]
    assert hit["total"] == float(hit["amount"])


def _sample_orders(path: Path) -> list[dict[str, Any]]:
    """The sample's well-formed events (it also has broken lines, which the source dead-letters)."""
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            pass
    return out
