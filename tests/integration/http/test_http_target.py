"""``http`` target against a real local HTTP server, run as a user runs it (``meshline run``)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _events(path: Path, ids: list[str]) -> None:
    lines = [
        json.dumps(
            {"specversion": "1.0", "id": i, "source": "test", "type": "com.example.t", "data": {"n": i}}
        )
        for i in ids
    ]
    path.write_text("\n".join(lines) + "\n")


def _spec(tmp: Path, target_config: str, delivery: str = "") -> Path:
    spec = tmp / "spec.yaml"
    spec.write_text(
        f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: http-target-test}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{tmp / "in.jsonl"}"}}}}
  targets:
    - name: out
      type: http
      config: {target_config}
    - {{name: dead, type: file, config: {{path: "{tmp / "dead"}"}}}}
  triggers:
    - name: all
      target: out
      {delivery}
  deadLetter: dead
"""
    )
    return spec


def _dead(tmp: Path) -> dict[str, dict]:
    out = {}
    for f in (tmp / "dead").glob("*.jsonl"):
        for line in f.read_text().splitlines():
            e = json.loads(line)
            out[e["id"]] = e
    return out


def test_retries_honour_retry_after_and_4xx_is_dead_lettered(meshline, endpoint, tmp_path):
    calls: dict[str, int] = {}

    def respond(req):
        eid = req.headers["ce-id"]
        calls[eid] = calls.get(eid, 0) + 1
        n = calls[eid]
        if eid == "throttled" and n == 1:
            return 429, {"Retry-After": "1"}, b"slow down"
        if eid == "flaky" and n <= 2:
            return 503, {}, b"unavailable"
        if eid == "rejected":
            return 400, {"Content-Type": "text/plain"}, b"field n must be a number " + b"x" * 600
        if eid == "missing":
            return 404, {}, b""
        if eid == "down":
            return 500, {}, b"boom"
        return 202, {}, b""

    endpoint.respond = respond
    ids = ["ok-1", "ok-2", "throttled", "flaky", "rejected", "missing", "down", "ok-3"]
    _events(tmp_path / "in.jsonl", ids)
    config = (
        f'{{url: "{endpoint.url}", username: user, password: "pw", concurrency: 4, '
        f"headers: {{X-Team: payments}}}}"
    )
    delivery = "delivery: {retries: 2, backoff: {policy: exponential, delay: 50ms, max: 5s}}"
    r = meshline("run", str(_spec(tmp_path, config, delivery)), "--runner", "direct")
    assert r.returncode == 0, r.stderr

    delivered = {q.headers["ce-id"] for q in endpoint.seen(lambda q: True)}
    assert delivered == set(ids)
    # Binary mode, with auth and the configured header.
    first = endpoint.seen(lambda q: q.headers["ce-id"] == "ok-1")[0]
    assert json.loads(first.body) == {"n": "ok-1"}
    assert first.headers["ce-type"] == "com.example.t"
    assert first.headers["authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()
    assert first.headers["x-team"] == "payments"
    # 429 with Retry-After: 1 → the retry waited about a second (policy delay alone is 50 ms).
    throttled = endpoint.seen(lambda q: q.headers["ce-id"] == "throttled")
    assert len(throttled) == 2 and throttled[1].at - throttled[0].at >= 0.9
    assert calls["flaky"] == 3  # two 503s, then delivered
    assert calls["rejected"] == 1 and calls["missing"] == 1  # 4xx: never retried
    assert calls["down"] == 3  # first try + 2 retries

    dead = _dead(tmp_path)
    assert set(dead) == {"rejected", "missing", "down"}
    assert all(e["meshlineerrorstage"] == "deliver" for e in dead.values())
    assert all(e["meshlinetrigger"] == "all" for e in dead.values())
    assert "HTTP 400" in dead["rejected"]["meshlineerror"]
    assert "field n must be a number" in dead["rejected"]["meshlineerror"]
    assert len(dead["rejected"]["meshlineerror"]) < 500  # a bounded excerpt of the body
    assert "HTTP 404" in dead["missing"]["meshlineerror"]
    assert "HTTP 500" in dead["down"]["meshlineerror"]
    assert dead["down"]["data"] == {"n": "down"}  # the original event
    assert "pw" not in r.stderr and "pw" not in json.dumps(dead)


def test_batch_mode_with_bearer_token(meshline, endpoint, tmp_path):
    ids = [f"e{i}" for i in range(10)]
    _events(tmp_path / "in.jsonl", ids)
    config = f'{{url: "{endpoint.url}", mode: batch, batch_size: 4, token: "tok-123"}}'
    r = meshline("run", str(_spec(tmp_path, config)), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    reqs = endpoint.seen(lambda q: True)
    assert all(q.headers["content-type"] == "application/cloudevents-batch+json" for q in reqs)
    assert all(q.headers["authorization"] == "Bearer tok-123" for q in reqs)
    got = [e["id"] for q in reqs for e in json.loads(q.body)]
    assert sorted(got) == sorted(ids)
    assert max(len(json.loads(q.body)) for q in reqs) <= 4
    assert not _dead(tmp_path)


def test_structured_mode_and_unreachable_endpoint(meshline, tmp_path):
    # Nothing listens on port 9 (discard): connection refused is transient, retried, then dead-lettered.
    _events(tmp_path / "in.jsonl", ["a", "b"])
    config = '{url: "http://127.0.0.1:9/x", mode: structured, timeout: 2s}'
    delivery = "delivery: {retries: 1, backoff: {delay: 10ms}}"
    r = meshline("run", str(_spec(tmp_path, config, delivery)), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    dead = _dead(tmp_path)
    assert set(dead) == {"a", "b"}
    assert all("127.0.0.1:9" in e["meshlineerror"] for e in dead.values())
