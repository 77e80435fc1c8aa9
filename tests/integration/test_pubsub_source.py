"""google.pubsub source against the real Pub/Sub emulator: delivery, pass-through, ack after commit."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from tests.harness import component, integration, rows_in, trigger
from tests.integration.pubsub_support import PROJECT, PubSub

pytestmark = pytest.mark.integration


def _integration(
    path: Path, host: str, sub: str, out: Path, window: str | None = None, **config: object
) -> Path:
    """A Pub/Sub subscription to a file target (and a dead-letter file); ``config`` adds to the
    source's (40 events at most unless said otherwise)."""
    config = config or {"max_events": 40}
    return integration(
        path,
        name="pubsub-it",
        sources=[
            component("in", "google.pubsub", project=PROJECT, subscription=sub, endpoint_url=host, **config)
        ],
        targets=[
            component("out", "file", path=f"{out}/events", window=window),
            component("dlq", "file", path=f"{out}/dlq"),
        ],
        triggers=[trigger("all", "out")],
        dead_letter="dlq",
    )


def _messages() -> list[tuple[bytes, dict[str, str]]]:
    msgs: list[tuple[bytes, dict[str, str]]] = []
    for i in range(30):
        msgs.append((orjson.dumps({"n": i}), {"origin": "test", "Bad-Name": "x"}))
    for i in range(5):  # structured CloudEvents pass through
        ce = {
            "specversion": "1.0",
            "id": f"ce-{i}",
            "source": "/app",
            "type": "app.created",
            "data": {"i": i},
        }
        msgs.append((orjson.dumps(ce), {"content-type": "application/cloudevents+json"}))
    for i in range(4):  # binary CloudEvents pass through
        msgs.append(
            (
                b'{"b": 1}',
                {
                    "ce-specversion": "1.0",
                    "ce-id": f"bin-{i}",
                    "ce-source": "/b",
                    "ce-type": "app.binary",
                    "content-type": "application/json",
                },
            )
        )
    msgs.append((b"{not json", {"content-type": "application/cloudevents+json"}))  # broken: dead letter
    return msgs


def test_drain_reports_a_failed_pull_instead_of_nothing_left(pubsub_host):
    """The acknowledgement checks below read "nothing left" from drain(): a pull that fails
    must not look like that."""
    from google.api_core.exceptions import NotFound

    ps = PubSub(pubsub_host)
    topic, sub = ps.new_subscription()
    ids = ps.publish(topic, [(b"{}", {})])
    assert ps.drain(sub) == ids  # a positive control: drain does see messages
    with pytest.raises(NotFound):
        ps.drain("no-such-subscription")


def test_every_message_delivered_and_acknowledged(meshline, pubsub_host, tmp_path):
    ps = PubSub(pubsub_host)
    topic, sub = ps.new_subscription(ack_deadline=10)
    ids = ps.publish(topic, _messages())
    out = tmp_path / "out"
    r = meshline("run", str(_integration(tmp_path / "it.yaml", pubsub_host, sub, out)), "--runner", "direct")
    assert r.returncode == 0, r.stderr
    events = rows_in(out / "events")
    dlq = rows_in(out / "dlq")
    wrapped = [e for e in events if e["type"] == "com.google.cloud.pubsub.message"]
    assert sorted(e["id"] for e in wrapped) == sorted(ids[:30])
    assert all(e["origin"] == "test" and "Bad-Name" not in e for e in wrapped)
    assert sorted(e["data"]["n"] for e in wrapped) == list(range(30))
    assert sorted(e["id"] for e in events if e["type"] == "app.created") == [f"ce-{i}" for i in range(5)]
    assert sorted(e["id"] for e in events if e["type"] == "app.binary") == [f"bin-{i}" for i in range(4)]
    assert len(dlq) == 1 and dlq[0]["meshlineerrorstage"] == "decode"
    time.sleep(11)  # past the ack deadline: anything not acknowledged would be redelivered now
    assert ps.drain(sub) == []


def test_a_failed_run_acknowledges_nothing(meshline, pubsub_host, tmp_path):
    ps = PubSub(pubsub_host)
    topic, sub = ps.new_subscription(ack_deadline=10)
    ids = ps.publish(topic, [(orjson.dumps({"n": i}), {}) for i in range(20)])
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the target wants a directory")
    spec = _integration(tmp_path / "it.yaml", pubsub_host, sub, blocker, max_events=20)
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 1 and "run failed" in r.stderr and "Traceback" not in r.stderr
    time.sleep(11)
    assert sorted(ps.drain(sub)) == sorted(ids)  # every message comes back: none was acknowledged


def test_idle_timeout_ends_the_run(meshline, pubsub_host, tmp_path):
    ps = PubSub(pubsub_host)
    topic, sub = ps.new_subscription()
    ps.publish(topic, [(b'{"n": 1}', {}), (b'{"n": 2}', {})])
    out = tmp_path / "out"
    spec = _integration(tmp_path / "it.yaml", pubsub_host, sub, out, idle_timeout="3s")
    r = meshline("run", str(spec), "--runner", "direct", timeout=120)  # the idle timeout ends it
    assert r.returncode == 0, r.stderr
    events = rows_in(out / "events")
    assert sorted(e["data"]["n"] for e in events) == [1, 2]


def test_streaming_on_prism_is_the_default_and_acknowledges(meshline, pubsub_host, tmp_path):
    ps = PubSub(pubsub_host)
    topic, sub = ps.new_subscription(ack_deadline=10)
    ids = ps.publish(topic, [(orjson.dumps({"n": i}), {}) for i in range(60)])
    out = tmp_path / "out"
    spec = _integration(tmp_path / "it.yaml", pubsub_host, sub, out, idle_timeout="5s")
    r = meshline("run", str(spec), timeout=600)  # no --runner: unbounded source → prism
    assert r.returncode == 0, r.stderr
    assert "using the prism runner" in r.stderr
    events = rows_in(out / "events")
    assert sorted(e["id"] for e in events) == sorted(ids)
    time.sleep(11)
    assert ps.drain(sub) == []


def test_ctrl_c_stops_a_streaming_run_quickly_and_loses_nothing(pubsub_host, tmp_path):
    import signal
    import subprocess
    import sys

    ps = PubSub(pubsub_host)
    topic, sub = ps.new_subscription(ack_deadline=10)
    ids = ps.publish(topic, [(orjson.dumps({"n": i}), {}) for i in range(40)])
    out = tmp_path / "out"
    spec = _integration(tmp_path / "it.yaml", pubsub_host, sub, out, batch=10, window="2s")  # endless
    exe = Path(sys.executable).parent / "meshline"
    proc = subprocess.Popen([str(exe), "run", str(spec)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((out / "events").glob("*.jsonl")):
        time.sleep(1)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)  # stopped within the deadline, or TimeoutExpired fails
    assert proc.returncode == 130, err.decode(errors="replace")[-2000:]
    assert b"interrupted" in err
    assert b"Traceback" not in err  # Beam's threads are silenced before Prism is stopped
    delivered = {e["id"] for e in rows_in(out / "events", "*.jsonl")}
    time.sleep(11)
    redelivered = set(ps.drain(sub))
    # At least once: each message is in the target, or was never acknowledged and comes back.
    assert set(ids) <= delivered | redelivered


def test_sigkill_midway_then_rerun_loses_nothing(pubsub_host, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    ps = PubSub(pubsub_host)
    topic, sub = ps.new_subscription(ack_deadline=10)
    broken = (b"{not json", {"content-type": "application/cloudevents+json"})  # a decode dead letter
    messages = [broken if i % 20 == 7 else (orjson.dumps({"n": i}), {}) for i in range(200)]
    ids = ps.publish(topic, messages)
    bad = {i for i, m in zip(ids, messages) if m is broken}
    good = set(ids) - bad
    out = tmp_path / "out"
    exe = str(Path(sys.executable).parent / "meshline")
    endless = _integration(tmp_path / "a.yaml", pubsub_host, sub, out, batch=5, window="1s")
    proc = subprocess.Popen(
        [exe, "run", str(endless)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list((out / "events").glob("*.jsonl")):
            time.sleep(0.5)
        assert list((out / "events").glob("*.jsonl")), "the first run wrote nothing"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and the Prism job server it started
        proc.wait(timeout=30)

    def ids_in(folder: Path) -> set[str]:
        return {e["id"] for e in rows_in(folder, "*.jsonl")}

    first, first_dead = ids_in(out / "events"), ids_in(out / "dlq")
    assert 0 < len(first) < len(good), "the kill must land midway"
    # Run again until the subscription is idle; unacknowledged messages are redelivered.
    again = _integration(tmp_path / "b.yaml", pubsub_host, sub, tmp_path / "again", idle_timeout="15s")
    r = subprocess.run([exe, "run", str(again)], capture_output=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    second, second_dead = ids_in(tmp_path / "again" / "events"), ids_in(tmp_path / "again" / "dlq")
    assert good <= first | second  # every message id is in the target at least once
    assert bad == first_dead | second_dead  # and every broken one in the dead-letter target
