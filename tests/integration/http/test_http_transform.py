"""``http`` transformation against a real local function server, via ``meshline run``."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _read(folder: Path) -> dict[str, dict]:
    out = {}
    for f in folder.glob("*.jsonl"):
        for line in f.read_text().splitlines():
            e = json.loads(line)
            out[e["id"]] = e
    return out


def _write_input(tmp_path: Path, events: list[dict]) -> None:
    """``in.jsonl``: the events as CloudEvents (specversion, source and type filled in)."""
    lines = [json.dumps({"specversion": "1.0", "source": "s", "type": "t", **e}) for e in events]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")


def _spec(tmp_path: Path, transformations: str, steps: str) -> Path:
    """in.jsonl → trigger ``call`` with ``steps`` → ``out``; failures → ``dead``."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: http-step-test}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{tmp_path / "in.jsonl"}"}}}}
  transformations:
{transformations}
  targets:
    - {{name: out, type: file, config: {{path: "{tmp_path / "out"}"}}}}
    - {{name: dead, type: file, config: {{path: "{tmp_path / "dead"}"}}}}
  triggers:
    - {{name: call, steps: {steps}, target: out}}
  deadLetter: dead
""")
    return spec


def test_function_replies_become_events(meshline, endpoint, tmp_path):
    calls: dict[str, int] = {}

    def respond(req):
        assert req.headers["ce-specversion"] == "1.0"  # binary mode
        eid = req.headers["ce-id"]
        calls[eid] = calls.get(eid, 0) + 1
        data = json.loads(req.body)
        if eid == "binary":
            return (
                200,
                {
                    "ce-specversion": "1.0",
                    "ce-id": "binary",
                    "ce-source": "fn",
                    "ce-type": "done",
                    "content-type": "application/json",
                },
                json.dumps({**data, "ok": True}).encode(),
            )
        if eid == "structured":
            ev = {"specversion": "1.0", "id": "structured", "source": "fn", "type": "done", "data": {"s": 1}}
            return 200, {"content-type": "application/cloudevents+json"}, json.dumps(ev).encode()
        if eid == "plain":
            return 200, {"content-type": "application/json"}, b'{"replaced": true}'
        if eid == "text":
            return 200, {"content-type": "text/plain"}, b"hello"
        if eid == "drop":
            return 204, {}, b""
        if eid == "throttled" and calls[eid] == 1:
            return 429, {"Retry-After": "1"}, b""
        if eid == "throttled":
            return 200, {"content-type": "application/json"}, b'{"after": "retry"}'
        if eid == "split":
            evs = [
                {"specversion": "1.0", "id": f"split-{i}", "source": "fn", "type": "part", "data": i}
                for i in (1, 2)
            ]
            return 200, {"content-type": "application/cloudevents-batch+json"}, json.dumps(evs).encode()
        if eid == "invalid":
            return 422, {}, b'{"error": "amount must be positive"}'
        if eid == "broken":
            return 200, {"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0"}'
        return 503, {}, b"down"

    endpoint.respond = respond
    ids = ["binary", "structured", "plain", "text", "drop", "throttled", "split", "invalid", "broken", "down"]
    _write_input(tmp_path, [{"id": i, "team": "x", "data": {"id": i}} for i in ids])
    spec = _spec(
        tmp_path,
        f"""    - name: fn
      type: http
      config: {{url: "{endpoint.url}", timeout: 5s, retries: 2, backoff: 50ms,
               headers: {{X-Fn-Key: k}}}}""",
        "[fn]",
    )
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    out = _read(tmp_path / "out")
    dead = _read(tmp_path / "dead")

    assert out["binary"]["type"] == "done" and out["binary"]["data"] == {"id": "binary", "ok": True}
    assert out["structured"]["data"] == {"s": 1}
    # Not a CloudEvent: the attributes stay, data and datacontenttype come from the reply.
    assert out["plain"]["type"] == "t" and out["plain"]["team"] == "x"
    assert out["plain"]["data"] == {"replaced": True}
    assert out["plain"]["datacontenttype"] == "application/json"
    assert out["text"]["data"] == "hello" and out["text"]["datacontenttype"] == "text/plain"
    assert "drop" not in out and "drop" not in dead  # 204: the function filtered it out
    assert out["throttled"]["data"] == {"after": "retry"} and calls["throttled"] == 2
    assert out["split-1"]["data"] == 1 and out["split-2"]["data"] == 2
    assert set(out) == {"binary", "structured", "plain", "text", "throttled", "split-1", "split-2"}

    assert set(dead) == {"invalid", "broken", "down"}
    assert all(e["meshlineerrorstage"] == "transform" and e["meshlinestep"] == "fn" for e in dead.values())
    assert "HTTP 422" in dead["invalid"]["meshlineerror"]
    assert "amount must be positive" in dead["invalid"]["meshlineerror"]
    assert calls["invalid"] == 1  # 4xx: not retried
    assert "broken CloudEvent" in dead["broken"]["meshlineerror"]
    assert "HTTP 503" in dead["down"]["meshlineerror"] and calls["down"] == 3
    assert dead["down"]["data"] == {"id": "down"}  # the input event, unchanged
    assert all(q.headers["x-fn-key"] == "k" for q in endpoint.seen(lambda q: True))


def test_batches_with_bounded_concurrency_then_chained_step(meshline, endpoint, tmp_path):
    n = 500
    lock = threading.Lock()
    inflight = [0, 0]  # now, max
    sizes: list[int] = []
    calls: dict[str, int] = {}  # "retry"/"refuse" request → times seen

    def respond(req):
        with lock:
            inflight[0] += 1
            inflight[1] = max(inflight[1], inflight[0])
        try:
            assert req.headers["content-type"] == "application/cloudevents-batch+json"
            events = json.loads(req.body)
            ids = [e["id"] for e in events]
            with lock:
                sizes.append(len(ids))
            time.sleep(0.02)  # long enough for requests to overlap
            if "e100" in ids:
                calls["retry"] = calls.get("retry", 0) + 1
                if calls["retry"] == 1:
                    return 503, {"Retry-After": "0"}, b"warming up"
            if "e250" in ids:
                calls["refuse"] = calls.get("refuse", 0) + 1
                return 400, {}, b'{"error": "bad batch"}'
            replies = [
                {
                    "specversion": "1.0",
                    "id": e["id"],
                    "source": "fn",
                    "type": "done",
                    "data": {**e["data"], "fn": 1},
                }
                for e in events
            ]
            return 200, {"content-type": "application/cloudevents-batch+json"}, json.dumps(replies).encode()
        finally:
            with lock:
                inflight[0] -= 1

    endpoint.respond = respond
    _write_input(tmp_path, [{"id": f"e{i:03d}", "data": {"n": i}} for i in range(n)])
    spec = _spec(
        tmp_path,
        f"""    - name: fn
      type: http
      config: {{url: "{endpoint.url}", timeout: 5s, retries: 2, backoff: 10ms, batch: 10, concurrency: 4}}
    - name: mark
      type: jq
      config: {{program: '.data.jq = true'}}""",
        "[fn, mark]",
    )
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    out = _read(tmp_path / "out")
    dead = _read(tmp_path / "dead")

    refused = [json.loads(q.body) for q in endpoint.seen(lambda q: b'"e250"' in q.body)]
    assert len(refused) == 1 and calls["refuse"] == 1  # 400: not retried
    refused_ids = {e["id"] for e in refused[0]}
    assert "e250" in refused_ids and len(refused_ids) <= 10

    assert set(dead) == refused_ids  # exactly that request's events
    for e in dead.values():
        assert e["meshlineerrorstage"] == "transform" and e["meshlinestep"] == "fn"
        assert "HTTP 400" in e["meshlineerror"] and "bad batch" in e["meshlineerror"]
        assert e["type"] == "t" and set(e["data"]) == {"n"}  # the input event, unchanged
    expected = {f"e{i:03d}" for i in range(n)} - refused_ids
    assert set(out) == expected
    assert all(e["type"] == "done" and e["data"]["fn"] == 1 and e["data"]["jq"] is True for e in out.values())
    assert out["e100"]["data"]["n"] == 100 and calls["retry"] == 2  # 503, then retried

    assert max(sizes) <= 10 and sum(sizes) >= n  # batch mode, ≤ 10 events per request
    assert 1 < inflight[1] <= 4, inflight  # concurrent, and bounded
