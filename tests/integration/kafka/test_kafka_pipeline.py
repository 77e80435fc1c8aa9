"""pipelines/kafka-orders.yaml against a real broker: volume on direct and Prism, a SIGKILL mid-run.

Input: N JSON orders over 3 partitions; every 1000th+7 has a non-numeric amount
(dead-lettered at the jq filter), plus one broken structured CloudEvent (dead-lettered
at decode) and one binary record (wrapped, filtered out). Orders with amount > 100 are
priced and delivered. After each run the group's committed offsets equal the end offsets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT
from tests.integration.kafka.support import committed, drain, end_offsets, fully_committed, new_topic, produce

pytestmark = pytest.mark.integration

PIPELINE = ROOT / "pipelines" / "kafka-orders.yaml"


def _orders(n: int) -> tuple[list, set[int], set[int]]:
    """Records, the order numbers that must arrive, those that must be dead-lettered."""
    records = []
    big: set[int] = set()
    bad: set[int] = set()
    for i in range(n):
        amount: object = i % 300
        if i % 1000 == 7:
            amount = "lots"
            bad.add(i)
        elif i % 300 > 100:
            big.add(i)
        records.append((str(i).encode(), orjson.dumps({"order": i, "amount": amount, "quantity": 2}), None))
    records.append((None, b"{broken", [("content-type", b"application/cloudevents+json")]))
    records.append((None, b"\x00\x01 not json", None))
    return records, big, bad


def _header(m, name: str) -> str | None:
    for k, v in m.headers() or ():
        if k == name:
            return v.decode()
    return None


def _params(bootstrap: str, topic: str, group: str, idle: str) -> list[str]:
    out = []
    for k, v in {
        "bootstrap": bootstrap,
        "input_topic": topic,
        "output_topic": f"{topic}-out",
        "dead_letter_topic": f"{topic}-dlq",
        "group": group,
        "idle": idle,
    }.items():
        out += ["--param", f"{k}={v}"]
    return out


def _check_outputs(bootstrap: str, topic: str, big: set[int], bad: set[int], dlq: bool = True) -> list[int]:
    """Asserts the output (and dead-letter) topics; returns order numbers delivered (with duplicates)."""
    out = drain(bootstrap, f"{topic}-out", expect=len(big))
    orders = [orjson.loads(m.value())["order"] for m in out]
    assert set(orders) == big
    sample = out[0]
    assert _header(sample, "ce_type") == "dev.meshline.kafka.message"
    assert _header(sample, "ce_source") == f"kafka://{bootstrap}/{topic}"
    value = orjson.loads(sample.value())
    assert value["total"] == value["amount"] * 2 and value["status"] == "big"
    # key = the partitionkey extension (the input record's key), so per-order ordering holds
    assert sample.key() == str(value["order"]).encode()

    if dlq:
        assert _dead_letters(bootstrap, topic, bad) == (set(), 1)
    return orders


def _dead_letters(bootstrap: str, topic: str, bad: set[int]) -> tuple[set[int], int]:
    """(bad orders missing from the dead-letter topic, decode dead letters seen), checking reasons."""
    dlq = [orjson.loads(m.value()) for m in drain(bootstrap, f"{topic}-dlq", expect=len(bad) + 1)]
    filtered = [d for d in dlq if d["meshlineerrorstage"] == "filter"]
    assert all("cannot be added" in d["meshlineerror"] for d in filtered), filtered[:1]
    decode = {d["id"] for d in dlq if d["meshlineerrorstage"] == "decode"}
    assert all("JSON" in d["meshlineerror"] for d in dlq if d["meshlineerrorstage"] == "decode")
    found = {d["data"]["order"] for d in filtered}
    assert found <= bad
    return bad - found, len(decode)


@pytest.mark.parametrize("runner", ["direct", "prism"])
def test_50k_records_through_filter_and_jq(meshline, kafka, runner):
    topic = new_topic(kafka.bootstrap, 3, f"orders-{runner}")
    records, big, bad = _orders(50_000)
    produce(kafka.bootstrap, topic, records)
    group = f"g-{topic}"
    r = meshline(
        "run", str(PIPELINE), "--runner", runner, *_params(kafka.bootstrap, topic, group, "3s"), timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    orders = _check_outputs(kafka.bootstrap, topic, big, bad)
    assert len(orders) == len(big)  # one clean run: no duplicates either
    assert fully_committed(kafka.bootstrap, topic, group) == {}


def _integration(path: Path, batch: int) -> Path:
    """kafka-orders.yaml with small bundles, so that a kill lands between commits."""
    text = PIPELINE.read_text().replace(
        "        idle_timeout: ${params.idle}\n",
        f"        idle_timeout: ${{params.idle}}\n        batch: {batch}\n",
    )
    assert f"batch: {batch}" in text
    path.write_text(text)
    return path


def test_sigkill_mid_run_loses_nothing(kafka, tmp_path, meshline):
    topic = new_topic(kafka.bootstrap, 3, "orders-kill")
    records, big, bad = _orders(30_000)
    produce(kafka.bootstrap, topic, records)
    group = f"g-{topic}"
    spec = _integration(tmp_path / "orders.yaml", batch=300)
    exe = Path(sys.executable).parent / "meshline"
    cmd = [str(exe), "run", str(spec), "--runner", "prism", *_params(kafka.bootstrap, topic, group, "0s")]
    log = open(tmp_path / "first-run.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            done = sum(committed(kafka.bootstrap, topic, group).get(p, -1) > 0 for p in range(3))
            if done >= 2:
                break
            assert proc.poll() is None, (tmp_path / "first-run.log").read_text()[-3000:]
            time.sleep(0.5)
        else:
            pytest.fail("no offsets committed in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run: CLI, Prism and its SDK worker
        proc.wait()
        log.close()
    at_kill = committed(kafka.bootstrap, topic, group)
    ends = end_offsets(kafka.bootstrap, topic)
    assert any(0 < at_kill[p] < ends[p] for p in at_kill), (at_kill, ends)  # really halfway

    params = _params(kafka.bootstrap, topic, group, "3s")
    r = meshline("run", str(spec), "--runner", "prism", *params, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    orders = _check_outputs(kafka.bootstrap, topic, big, bad, dlq=False)
    assert committed(kafka.bootstrap, topic, group) == ends

    # Duplicates come only from records at or after the offsets committed when the run died.
    out = drain(kafka.bootstrap, f"{topic}-out", expect=len(orders))
    dupes = Counter(_header(m, "ce_id") for m in out)
    repeated = [i for i, n in dupes.items() if n > 1]
    for ce_id in repeated:
        _, partition, offset = str(ce_id).rsplit("-", 2)
        assert int(offset) >= at_kill[int(partition)], (ce_id, at_kill)
    assert all(n <= 2 for n in dupes.values())

    # Dead letters (decode, filter and delivery failures) reach the dead-letter target through
    # one writer per input, fused with the source's bundle (no Flatten): a record's offset is
    # committed only after its dead letter was written, so the kill loses none of them.
    missing, decode = _dead_letters(kafka.bootstrap, topic, bad)
    assert decode == 1  # the one broken record (its id, however often it was written)
    assert missing == set(), f"{len(missing)} dead letters lost by the kill"
