"""``spec.execution`` (bundle, checkpoint and fill settings) and the Flink drain of ended runs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from meshline.connectors.queues import Message
from meshline.connectors.unbounded import FILL_BUDGET, FILL_WAIT, ReadFromQueue
from meshline.errors import MeshlineError
from meshline.events import CloudEvent
from meshline.runners import flink_drain, in_process_runner
from meshline.runners.pacing import FLINK, pacing
from meshline.spec import load_text
from meshline.spec.model import Execution


def _text(execution: str) -> str:
    return (
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: p}\nspec:\n"
        f"  execution: {execution}\n"
        "  sources: [{name: in, type: generate, config: {count: 1}}]\n"
        "  targets: [{name: out, type: log}]\n"
        "  triggers: [{name: t, target: out}]\n"
    )


def test_execution_is_read_from_the_file_with_durations():
    text = _text("{bundleSize: 10, bundleTime: 50ms, checkpointInterval: 2s, fillWait: 0}")
    (it,) = load_text(text, "p.yaml").integrations
    assert it.execution == Execution(bundle_size=10, bundle_time=0.05, checkpoint_interval=2.0, fill_wait=0.0)
    (it,) = load_text(_text("{}"), "p.yaml").integrations
    assert it.execution == Execution()


def test_a_wrong_execution_setting_is_refused_naming_the_key():
    with pytest.raises(MeshlineError) as e:
        load_text(_text("{bundleSize: 0, fill: 1s, bundleTime: soon}"), "p.yaml")
    message = str(e.value)
    assert "spec.execution.bundleSize" in message and "spec.execution.fill" in message
    assert "spec.execution.bundleTime" in message


def test_each_runner_has_defaults_and_the_file_overrides_them():
    assert pacing("flink") == FLINK and FLINK.bundle_time == 0.1 and FLINK.checkpoint_interval == 0.5
    prism = pacing("prism")
    assert prism.bundle_time is None and prism.checkpoint_interval is None  # Prism paces itself
    assert (prism.fill_wait, prism.fill_budget) == (FILL_WAIT, 0.25)  # measured: see pacing.py
    assert (pacing("direct").fill_wait, pacing("direct").fill_budget) == (FILL_WAIT, FILL_BUDGET)
    assert pacing("prism", Execution(fill_budget=0.5)).fill_budget == 0.5
    mixed = pacing("flink", Execution(checkpoint_interval=1.5, fill_budget=0.0))
    assert mixed.checkpoint_interval == 1.5 and mixed.fill_budget == 0.0 and mixed.bundle_time == 0.1


# --------------------------------------------------------------------------- fill settings

WAITS: list[float] = []  # the waits the reader below was asked for (the direct runner is in-process)


class _OneAtATime:
    """A queue that hands out one message per pull, as long as asked."""

    def __init__(self) -> None:
        self._n = 0

    def pull(self, max_messages: int, wait: float) -> list[Message]:
        WAITS.append(wait)
        self._n += 1
        event = CloudEvent({"specversion": "1.0", "id": str(self._n), "source": "q", "type": "t"})
        return [Message(event=event, ack_id=str(self._n), timestamp=time.time())]

    def ack(self, ack_ids: list[str]) -> None:
        return None

    def close(self) -> None:
        return None


def test_a_queue_source_waits_as_long_as_fill_wait_says_once_a_bundle_has_emitted():
    WAITS.clear()
    read = ReadFromQueue(_OneAtATime, source_name="q", max_events=4, batch=10, poll=0.7)
    read.pace(0.013, 5.0)
    with beam.Pipeline(runner=in_process_runner()) as p:
        events, _dead = p | read
        assert_that(events | beam.Map(lambda e: e.attributes["id"]), equal_to(["1", "2", "3", "4"]))
    assert WAITS[0] == 0.7  # the first pull of a bundle waits the source's poll
    assert set(WAITS[1:]) == {0.013}, WAITS  # then fill_wait per pull, within fill_budget


# --------------------------------------------------------------------------- the drain


class _FakeFlink:
    """Flink's REST API for one running job of two operators, as far as the drainer reads it."""

    def __init__(self) -> None:
        self.watermarks = [9223372036854775807, 1_700_000_000_000]  # the second source goes on
        self.stops: list[dict[str, Any]] = []

    def answer(self, path: str) -> Any:
        if path == "/jobs/overview":
            return {
                "jobs": [{"jid": "j1", "name": "p", "state": "RUNNING", "start-time": time.time() * 1000}]
            }
        if path == "/jobs/j1":
            return {"vertices": [{"id": "v1"}, {"id": "v2"}]}
        vertex = path.split("/")[4]
        index = 0 if vertex == "v1" else 1
        if path.endswith("/metrics"):
            return [{"id": "0.op.currentOutputWatermark"}, {"id": "0.numRecordsIn"}]
        return [{"id": "0.op.currentOutputWatermark", "value": str(self.watermarks[index])}]


@pytest.fixture
def fake_flink() -> Iterator[tuple[_FakeFlink, str]]:
    flink = _FakeFlink()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply(flink.answer(self.path))

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            flink.stops.append({"path": self.path, **body})
            self._reply({"request-id": "r1"})

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield flink, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_job_is_drained_only_once_every_watermark_has_reached_the_end(fake_flink, monkeypatch):
    from meshline.runners import committed

    flink, url = fake_flink
    monkeypatch.setattr(flink_drain, "POLL_S", 0.02)
    monkeypatch.setattr(flink_drain, "RUNNING_POLL_S", 0.05)
    monkeypatch.setattr(flink_drain, "SETTLE_WARN_POLLS", 5)
    totals = {"target.out.in": 3, "target.out.delivered": 2}
    monkeypatch.setattr(committed, "counters", lambda: dict(totals))
    said: list[str] = []
    drainer = flink_drain.Drainer(lambda: url, "p", said.append, remote=False).start()
    try:
        time.sleep(0.3)  # many polls while one source still holds its watermark
        assert flink.stops == [] and not drainer.drained
        flink.watermarks[1] = 9223372036854775807  # that source has ended too
        # but one event handed to the target is not stored yet: the drainer says so and waits
        # (a deadline, not a sleep: on a loaded machine five polls can take longer than 0.3 s)
        deadline = time.monotonic() + 10
        while not said and time.monotonic() < deadline:
            time.sleep(0.02)
        assert flink.stops == [] and not drainer.drained
        assert said and "target out: 1" in said[0], said
        said.clear()
        totals["target.out.dead_lettered"] = 1
        deadline = time.monotonic() + 10
        while not flink.stops and time.monotonic() < deadline:
            time.sleep(0.02)
        (stop,) = flink.stops
        assert stop["path"] == "/jobs/j1/stop" and stop["drain"] is True
        assert stop["targetDirectory"].startswith("file://")
        assert drainer.drained and said and "draining" in said[0]
    finally:
        drainer.close()


def test_end_of_time_is_beams_global_window_end_or_later():
    assert not flink_drain.all_ended([])
    assert flink_drain.all_ended([9223372036854775807, flink_drain.END_OF_TIME_MS])
    assert not flink_drain.all_ended([9223372036854775807, flink_drain.END_OF_TIME_MS - 1])


def test_no_drain_while_a_target_has_events_in_flight() -> None:
    def targets_settled(counters: dict[str, int]) -> bool:
        return not flink_drain.in_flight(counters)

    assert targets_settled({})  # an SDK worker elsewhere: nothing recorded, nothing to wait for
    assert targets_settled({"target.out.in": 40, "target.out.delivered": 33, "target.out.dead_lettered": 7})
    assert targets_settled({"target.s3.in": 5, "target.s3.delivered": 2, "target.s3.already_stored": 3})
    assert not targets_settled({"target.out.in": 40, "target.out.delivered": 33})
    assert not targets_settled(
        {"target.a.in": 1, "target.a.delivered": 1, "target.b.in": 2, "target.b.dead_lettered": 1}
    )
    assert flink_drain.in_flight(
        {"target.a.in": 1, "target.a.delivered": 1, "target.b.in": 5, "target.b.dead_lettered": 1}
    ) == {"b": 4}
