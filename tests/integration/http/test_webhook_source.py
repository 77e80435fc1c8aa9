"""The ``http`` webhook source: what a sender sees, with and without a commit."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness import running, wait_listening
from tests.integration.http.support import free_port

pytestmark = pytest.mark.integration


def _post(url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def test_202_only_after_commit_and_503_without(webhook):
    reader, url = webhook(path="/in", ack_timeout="1s")
    pool = ThreadPoolExecutor(2)
    pending = pool.submit(_post, url, b'{"a": 1}', {"content-type": "application/json"})
    msgs = []
    while not msgs:
        msgs = list(reader.pull(10, 1.0))
    time.sleep(0.2)
    assert not pending.done()  # pulled into a bundle, not committed yet: the sender still waits
    reader.ack([m.ack_id for m in msgs])
    status, _, _ = pending.result(timeout=10)
    assert status == 202
    event = msgs[0].event
    assert event.type == "dev.meshline.http.request" and event.data == {"a": 1}
    assert event.source == url and event.get("datacontenttype") == "application/json"

    # A bundle that never commits (failed, or too slow): 503 with Retry-After; the sender retries.
    lost = pool.submit(_post, url, b'{"a": 2}', {"content-type": "application/json"})
    while not reader.pull(10, 1.0):
        pass
    status, _, headers = lost.result(timeout=10)
    assert status == 503 and headers.get("Retry-After") == "1"


def test_every_cloudevents_mode_and_a_batch_waits_for_all(webhook):
    reader, url = webhook()
    batch = [{"specversion": "1.0", "id": f"b{i}", "source": "s", "type": "t", "data": i} for i in range(3)]
    sends = [
        (
            b'{"x": 1}',
            {
                "ce-specversion": "1.0",
                "ce-id": "bin",
                "ce-source": "s",
                "ce-type": "t",
                "content-type": "application/json",
            },
        ),
        (
            json.dumps({"specversion": "1.0", "id": "st", "source": "s", "type": "t"}).encode(),
            {"content-type": "application/cloudevents+json"},
        ),
        (json.dumps(batch).encode(), {"content-type": "application/cloudevents-batch+json"}),
        (b"plain text", {"content-type": "text/plain", "ce-id": "given-id"}),
    ]
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(_post, url, b, h) for b, h in sends]
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 6 and time.monotonic() < deadline:
            got += reader.pull(10, 0.5)
        by_id = {m.event.id: m for m in got}
        assert set(by_id) == {"bin", "st", "b0", "b1", "b2", "given-id"}
        assert by_id["bin"].event.data == {"x": 1}
        assert by_id["given-id"].event.data == "plain text"
        # The batch request answers only once all three of its events are committed.
        reader.ack([by_id[i].ack_id for i in ("bin", "st", "given-id", "b0", "b1")])
        time.sleep(0.3)
        assert not futures[2].done()
        reader.ack([by_id["b2"].ack_id])
        assert [f.result(timeout=10)[0] for f in futures] == [202, 202, 202, 202]


def test_rejected_at_the_door(webhook):
    reader, url = webhook(
        path="/hook",
        username="u",
        password="secret-pw",
        max_body_bytes=100,
        allowed_origins=["eventgrid.azure.net"],
    )
    auth = {"Authorization": "Basic " + base64.b64encode(b"u:secret-pw").decode()}
    status, _, headers = _post(url, b"{}", {"content-type": "application/json"})
    assert status == 401 and "Basic" in headers.get("WWW-Authenticate", "")
    status, _, _ = _post(url, b"{}", {"Authorization": "Basic " + base64.b64encode(b"u:wrong").decode()})
    assert status == 401
    status, text, _ = _post(url, b"x" * 101, {**auth, "content-type": "text/plain"})
    assert status == 413 and "100" in text
    status, text, _ = _post(
        url, b'{"specversion": "1.0", "id": "1"}', {**auth, "content-type": "application/cloudevents+json"}
    )
    assert status == 400 and "source" in text  # the reason, for the sender
    status, text, _ = _post(url, b"{not json", {**auth, "content-type": "application/json"})
    assert status == 400 and "JSON" in text
    status, _, _ = _post(url.replace("/hook", "/other"), b"{}", auth)
    assert status == 404
    status, _, headers = _post(url, b"", {"WebHook-Request-Origin": "eventgrid.azure.net"}, method="OPTIONS")
    assert status == 401  # the handshake needs the credentials too
    status, _, headers = _post(
        url, b"", {**auth, "WebHook-Request-Origin": "EventGrid.azure.net"}, method="OPTIONS"
    )
    assert status == 200 and headers.get("WebHook-Allowed-Origin") == "eventgrid.azure.net"
    assert reader.pull(10, 0.2) == []  # nothing rejected entered the pipeline


def test_bearer_token(webhook):
    reader, url = webhook(token="tok-9")
    status, _, headers = _post(url, b"{}", {"Authorization": "Bearer nope"})
    assert status == 401 and headers.get("WWW-Authenticate") == "Bearer"
    with ThreadPoolExecutor(1) as pool:
        f = pool.submit(
            _post, url, b"{}", {"Authorization": "Bearer tok-9", "content-type": "application/json"}
        )
        msgs = []
        while not msgs:
            msgs = list(reader.pull(1, 1.0))
        reader.ack([m.ack_id for m in msgs])
        assert f.result(timeout=10)[0] == 202


def test_closing_answers_waiting_requests_with_503(webhook):
    reader, url = webhook(ack_timeout="30s")
    with ThreadPoolExecutor(1) as pool:
        f = pool.submit(_post, url, b"{}", {"content-type": "application/json"})
        time.sleep(0.5)
        reader.close()
        assert f.result(timeout=10)[0] == 503


def test_meshline_run_on_the_direct_runner(tmp_path):
    """The whole source on the direct runner: 202s, the events in the file, the run ends at max_events."""
    port = free_port()
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: webhook-direct}}
spec:
  sources:
    - {{name: hook, type: http, config: {{port: {port}, path: /e, max_events: 20}}}}
  targets:
    - {{name: out, type: file, config: {{path: "{tmp_path / "out"}"}}}}
  triggers:
    - {{name: all, target: out}}
"""
    )
    with running("run", str(spec), "--runner", "direct") as proc:
        wait_listening(port, proc)
        url = f"http://127.0.0.1:{port}/e"
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(
                    lambda i: _post(url, json.dumps({"i": i}).encode(), {"content-type": "application/json"})[
                        0
                    ],
                    range(20),
                )
            )
        assert codes == [202] * 20
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    rows = [json.loads(x) for f in (tmp_path / "out").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert sorted(r["data"]["i"] for r in rows) == list(range(20))


def test_an_event_after_a_long_idle_spell_is_committed_on_prism(tmp_path):
    """Idle, the source waits ever longer in its pull (up to IDLE_WAIT_MAX, after about
    IDLE_WAIT_MAX / IDLE_WAIT_GROWTH seconds): an event arriving then still ends the wait, is
    written, and gets its 202; the run ends at max_events with both events written."""
    from meshline.connectors.unbounded import IDLE_WAIT_GROWTH, IDLE_WAIT_MAX

    port = free_port()
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: webhook-idle}}
spec:
  sources:
    - {{name: hook, type: http, config: {{port: {port}, path: /e, max_events: 2}}}}
  targets:
    - {{name: out, type: file, config: {{path: "{tmp_path / "out"}"}}}}
  triggers:
    - {{name: all, target: out}}
"""
    )
    url = f"http://127.0.0.1:{port}/e"
    with running("run", str(spec), "--runner", "prism") as proc:
        wait_listening(port, proc, 180)
        assert _post(url, b'{"i": 1}', {"content-type": "application/json"})[0] == 202
        time.sleep(IDLE_WAIT_MAX / IDLE_WAIT_GROWTH + 2 * IDLE_WAIT_MAX)  # idle: the wait at its longest
        assert proc.poll() is None
        status, reply, _ = _post(url, b'{"i": 2}', {"content-type": "application/json"})
        assert status == 202, (status, reply)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    rows = [json.loads(x) for f in (tmp_path / "out").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert sorted(r["data"]["i"] for r in rows) == [1, 2]
