"""``meshline tap FILE STAGE``: the events passing one stage, as JSON lines on stdout."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import orjson
import pytest

from tests.e2e.observe_support import TOKEN, post, watched_integration
from tests.harness import component, free_port, integration, rows_in, running, trigger, wait_listening

pytestmark = pytest.mark.e2e


def _orders(tmp_path: Path, n: int) -> Path:
    """``n`` orders (every 7th a refund) read from a file → ``big`` (jq: a new object) and ``all``."""
    src = tmp_path / "in.jsonl"
    with src.open("wb") as fh:
        for i in range(n):
            kind = "refund" if i % 7 == 0 else "order"
            data = {"n": i, "amount": i * 10, "card": {"number": f"4111-{i:04d}", "holder": "A. B."}}
            fh.write(
                orjson.dumps(
                    {"specversion": "1.0", "id": f"e{i}", "source": "/t", "type": kind, "data": data}
                )
            )
            fh.write(b"\n")
    out = tmp_path / "out"
    return integration(
        tmp_path / "tapped.yaml",
        sources=[component("orders", "file", path=str(src))],
        transformations=[
            component(
                "shape", "jq", program=".data = {n: .data.n, doubled: (.data.amount * 2), card: .data.card}"
            ),
            component("tag", "jq", program='.data.tag = "checked"'),
        ],
        targets=[
            component("big", "file", path=str(out / "big")),
            component("all", "file", path=str(out / "all")),
        ],
        triggers=[
            trigger("orders-only", "big", steps=["shape", "tag"], filters=[{"exact": {"type": "order"}}]),
            trigger("everything", "all"),
        ],
    )


def _lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "stage, expect",
    [
        ("source.orders", lambda e: "amount" in e["data"]),
        ("trigger.orders-only", lambda e: e["type"] == "order" and e["data"]["tag"] == "checked"),
        ("step.shape", lambda e: "doubled" in e["data"] and "tag" not in e["data"]),
        ("target.all", lambda e: "amount" in e["data"]),
    ],
)
def test_tap_prints_the_events_passing_the_stage(meshline, tmp_path, stage, expect):
    spec = _orders(tmp_path, 40)
    r = meshline("tap", str(spec), stage, "--mask", "data.card.number")
    assert r.returncode == 0, r.stderr
    events = _lines(r.stdout)
    want = 40 if stage in ("source.orders", "target.all") else 40 - len(range(0, 40, 7))
    assert len(events) == want, r.stdout[-2000:]
    assert all(expect(e) for e in events), events[:3]
    assert all(e["data"]["card"]["number"] == "***" for e in events if "card" in e["data"])
    assert "4111-" not in r.stdout
    # the integration ran as with `run`: its targets were written
    assert len(rows_in(tmp_path / "out" / "all")) == 40


def test_tap_with_a_limit_and_a_rate(meshline, tmp_path):
    spec = _orders(tmp_path, 500)
    r = meshline("tap", str(spec), "everything", "--limit", "5")  # a bare name that is unique
    assert r.returncode == 0, r.stderr
    assert len(_lines(r.stdout)) == 5
    r = meshline("tap", str(spec), "target.all", "--rate", "10")
    assert r.returncode == 0, r.stderr
    assert 1 <= len(_lines(r.stdout)) <= 10 * 5  # at most 10 a second


def test_an_unknown_stage_is_refused_naming_the_stages(meshline, tmp_path):
    spec = _orders(tmp_path, 3)
    r = meshline("tap", str(spec), "step.nope")
    assert r.returncode == 2
    assert "no stage 'step.nope'" in r.stderr and "trigger.orders-only" in r.stderr
    assert not (tmp_path / "out").exists()  # nothing ran


def test_tap_on_a_streaming_run_stops_after_its_limit(tmp_path):
    port = free_port()
    spec = watched_integration(tmp_path, port)
    with running("tap", str(spec), "trigger.orders", "--limit", "3") as proc:
        wait_listening(port, proc, 180)
        for i in range(2):
            assert post(port, i) == 202
        try:  # the third is printed as it passes, and the run stops before committing it: 503 or 202
            post(port, 2)
        except OSError:
            pass
        try:
            out, err = proc.communicate(timeout=120)  # it stops by itself after the third
        except Exception:
            proc.send_signal(signal.SIGINT)
            raise
    assert proc.returncode == 0, err[-3000:]
    events = _lines(out)
    assert [e["data"]["total"] for e in events] == [e["data"]["qty"] * 3 + 1 for e in events]
    assert len(events) == 3
    assert TOKEN not in out + err
