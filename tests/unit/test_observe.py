"""The in-process observation behind --metrics-port, --ui and tap (meshline.observe), without a runner."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from meshline import observe
from meshline.compiler import progress
from meshline.compiler.observed import unwatch, watch
from meshline.compiler.plan import TriggerPlan
from meshline.compiler.router import Router
from meshline.events import CloudEvent, dead_letter
from meshline.runners import committed
from meshline.secrets import remember
from meshline.spec.loader import load_text
from meshline.ui.server import Endpoint, graph_model


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    observe.enable(True)
    observe.reset()
    observe.set_masks([])
    yield
    observe.enable(False)
    observe.reset()
    observe.set_masks([])


def _event(i: int, **data: object) -> CloudEvent:
    return CloudEvent(
        {"specversion": "1.0", "id": f"e{i}", "source": "/t", "type": "order"}, {"n": i, **data}
    )


def test_a_tap_samples_at_most_its_rate_and_closes():
    tap = observe.open_tap("source.s", rate=5)
    assert observe.TAPPING and observe.tapped("source.s")
    observe.offer("source.s", [_event(i) for i in range(20)])
    observe.offer("source.other", [_event(99)])
    taken = tap.take()
    assert [e["id"] for e in taken] == [f"e{i}" for i in range(5)]
    assert tap.seen == 20 and tap.take() == []
    observe.close_tap(tap)
    assert not observe.TAPPING and not observe.tapped("source.s")


def test_tapped_events_are_masked():
    remember("hunter2-very-secret")
    observe.set_masks(["data.card.number", "pin"])
    tap = observe.open_tap("target.t")
    observe.offer(
        "target.t", [_event(1, card={"number": "4111", "holder": "x"}, pin=1234, note="hunter2-very-secret")]
    )
    (e,) = tap.take()
    observe.close_tap(tap)
    assert e["data"]["card"] == {"number": "***", "holder": "x"}
    assert e["data"]["pin"] == "***"
    assert "hunter2-very-secret" not in str(e)


def test_dead_letters_are_kept_with_their_reason_only_when_enabled():
    dead_letter(_event(1), ValueError("bad qty"), "transform", "orders", "price")
    (d,) = observe.dead_letters()
    assert (d["stage"], d["trigger"], d["step"]) == ("transform", "orders", "price")
    assert "bad qty" in d["reason"] and d["event"]["id"] == "e1"
    assert observe.dead_letters(after=d["n"]) == []
    observe.enable(False)
    dead_letter(_event(2), ValueError("x"), "transform", "orders", "price")
    assert len(observe.dead_letters()) == 1
    for i in range(observe.DEAD_LETTERS + 5):
        observe.enable(True)
        dead_letter(_event(i), ValueError("x"), "filter", "t", "")
    assert len(observe.dead_letters()) == observe.DEAD_LETTERS


def test_latency_is_observed_when_the_bundle_is_done_minus_dead_letters():
    now = int(time.time() * 1e6)
    observe.stamp("out", now - 2_000_000, 3)  # three events two seconds old
    observe.stamp("out", now - 10_000, 1)
    observe.stamp("out", 0, 5)  # Beam's minimum timestamp: a file source, no latency
    observe.bundle_done({"target.out.dead_lettered": 1})
    buckets, count, total = observe.latency()["out"]
    assert count == 3  # 4 stamped, 1 dead-lettered by the target
    assert 4.0 < total < 6.5
    assert buckets[observe.BUCKETS.index(2.5)] >= 2
    observe.stamp("out", now, 7)
    observe.bundle_done(None)  # a failed bundle delivered nothing
    assert observe.latency()["out"][1] == 3


def _plans() -> list[TriggerPlan]:
    from meshline.compiler.build import plan_triggers

    (integration,) = load_text(
        """
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: t}
spec:
  sources: [{name: s, type: generate, config: {count: 1}}]
  transformations:
    - {name: one, type: jq, config: {program: '.data.a = 1'}}
    - {name: two, type: jq, config: {program: '.data.b = 2'}}
  targets: [{name: out, type: log}]
  triggers:
    - {name: t1, filters: [{exact: {type: order}}], steps: [one, two], target: out}
"""
    ).integrations
    return plan_triggers(integration)["s"]


def test_a_watched_router_offers_trigger_and_step_outputs_and_counts_the_same():
    router = Router(_plans(), "t")
    tap_trigger = observe.open_tap("trigger.t1")
    tap_step = observe.open_tap("step.one")
    watch(router)
    out = router.route_many([_event(i) for i in range(3)])
    unwatch(router)
    assert [e.data for _, e in out] == [{"n": i, "a": 1, "b": 2} for i in range(3)]
    assert [e["data"] for e in tap_trigger.take()] == [{"n": i, "a": 1, "b": 2} for i in range(3)]
    assert [e["data"] for e in tap_step.take()] == [{"n": i, "a": 1} for i in range(3)]
    m = router.metrics()
    assert m["trigger.t1.out"] == 3 and m["step.one.in"] == 3 and m["step.two.out"] == 3
    observe.close_tap(tap_trigger)
    observe.close_tap(tap_step)
    router.route_many([_event(9)])
    assert "_run" not in router.__dict__


_SPEC = """
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: g}
spec:
  parameters: [{name: key, secret: true, default: "zz-top-secret-99"}]
  sources: [{name: s, type: generate, config: {count: 1}}]
  transformations: [{name: one, type: jq, config: {program: '.data.a = 1'}}]
  targets: [{name: out, type: log}, {name: dlq, type: log}]
  triggers:
    - {name: t1, filters: [{cesql: "subject = 'zz-top-secret-99'"}], steps: [one], target: out,
       delivery: {deadLetter: dlq}}
"""


def test_the_graph_has_every_stage_and_no_secret():
    (integration,) = load_text(_SPEC).integrations
    g = graph_model([integration])
    assert {n["id"] for n in g["nodes"]} == {"source.s", "trigger.t1", "step.one", "target.out", "target.dlq"}
    assert {(e["from"], e["to"], e["dead"]) for e in g["edges"]} == {
        ("source.s", "trigger.t1", False),
        ("trigger.t1", "step.one", False),
        ("step.one", "target.out", False),
        ("trigger.t1", "target.dlq", True),
    }
    assert "zz-top-secret-99" not in str(g)


def _get(url: str, host: str | None = None) -> tuple[int, str, str]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("content-type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read().decode()


def test_the_endpoint_serves_metrics_and_the_page_on_loopback_only(monkeypatch):
    (integration,) = load_text(_SPEC).integrations
    monkeypatch.setattr(committed, "counters", lambda: {"source.s.in": 7, "trigger.t1.matched": 5})
    monkeypatch.setattr(progress, "snapshot", lambda: {"source.s.in": 9, "target.out.in": 5})
    page = Endpoint(lambda: [integration], 0, ui=True).start()
    only = Endpoint(lambda: [integration], 0, ui=False).start()
    try:
        base = f"http://127.0.0.1:{page.port}"
        status, kind, text = _get(base + "/metrics")
        assert status == 200 and kind.startswith("text/plain; version=0.0.4")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        values = {
            (s.labels["stage"], s.labels["name"], s.labels["outcome"]): s.value
            for s in families["meshline_events"].samples
        }
        assert values[("source", "s", "in")] == 9  # the live total, higher than the committed one
        assert values[("trigger", "t1", "matched")] == 5
        assert values[("target", "out", "in")] == 5
        status, kind, html = _get(base + "/")
        assert status == 200 and kind.startswith("text/html") and "/app.js" in html
        assert _get(base + "/app.js")[0] == 200
        status, _, body = _get(base + "/api/stats")
        assert status == 200 and '"stage": "source"' in body
        assert _get(base + "/api/tap?stage=source.nope")[0] == 404
        status, _, body = _get(base + "/api/tap?stage=source.s")
        assert status == 200 and '"id"' in body
        assert _get(base + "/api/graph", host="rebind.example.com")[0] == 403
        assert _get(f"http://localhost:{page.port}/api/graph")[0] == 200
        assert _get(f"http://127.0.0.1:{only.port}/metrics")[0] == 200
        assert _get(f"http://127.0.0.1:{only.port}/")[0] == 404
        with socket.create_connection(("127.0.0.1", page.port)) as s:
            head = f"POST /api/stats HTTP/1.1\r\nHost: 127.0.0.1:{page.port}\r\nContent-Length: 0\r\n\r\n"
            s.sendall(head.encode())
            assert s.recv(100).startswith(b"HTTP/1.1 405")
        assert "zz-top-secret-99" not in _get(base + "/api/graph")[2]
    finally:
        page.stop()
        only.stop()
