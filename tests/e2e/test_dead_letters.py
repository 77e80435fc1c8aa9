"""10,000 events with 5% malformed lines: every event is delivered or dead-lettered, exactly."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from tests.harness import rows_in

pytestmark = pytest.mark.e2e


def _rows(folder: Path, fmt: str = "jsonl") -> list[dict]:
    return rows_in(folder, f"**/*.{fmt}")


def test_ten_thousand_events_five_percent_malformed(meshline, tmp_path):
    rng = random.Random(1)
    src = tmp_path / "in.jsonl"
    good: list[dict] = []
    bad = 0
    with src.open("wb") as fh:
        for i in range(10_000):
            if rng.random() < 0.05:
                bad += 1
                fh.write(
                    rng.choice([b'{"specversion":"1.0","id":', b"not json", b'{"id":"x"}', b"[1,2]"]) + b"\n"
                )
                continue
            e = {
                "specversion": "1.0",
                "id": f"e{i}",
                "source": "/gen",
                "type": rng.choice(["order.created", "order.cancelled", "ping"]),
                "data": {"amount": rng.randrange(0, 200), "n": i},
            }
            good.append(e)
            fh.write(orjson.dumps(e) + b"\n")
    out = tmp_path / "out"
    spec = tmp_path / "it.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: malformed}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{src}"}}}}
  targets:
    - {{name: created, type: file, config: {{path: "{out}/created"}}}}
    - {{name: big, type: file, config: {{path: "{out}/big", format: parquet}}}}
    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}
  triggers:
    - name: created
      filters: [{{exact: {{type: order.created}}}}]
      target: created
    - name: big
      filters: [{{cesql: "type LIKE 'order.%'"}}, {{jq: '.data.amount >= 100'}}]
      target: big
  deadLetter: dlq
""")
    r = meshline("run", str(spec))
    assert r.returncode == 0, r.stderr
    created = _rows(out / "created")
    big = _rows(out / "big", "parquet")
    dlq = _rows(out / "dlq")
    want_created = {e["id"] for e in good if e["type"] == "order.created"}
    want_big = {e["id"] for e in good if e["type"].startswith("order.") and e["data"]["amount"] >= 100}
    assert sorted(e["id"] for e in created) == sorted(want_created)
    assert sorted(e["id"] for e in big) == sorted(want_big)
    assert len(dlq) == bad
    assert all(e["meshlineerrorstage"] == "decode" and e["meshlineerror"] for e in dlq)
    assert len(created) + len(big) + len(dlq) == len(want_created) + len(want_big) + bad


def test_the_same_event_dead_lettered_by_two_targets_is_kept_twice(meshline, tmp_path):
    """Two failing targets send the same events to one dead-letter target: nothing overwrites."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the targets want folders")
    spec = tmp_path / "two.yaml"
    spec.write_text(
        f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: two-failing}}
spec:
  sources:
    - name: gen
      type: generate
      config: {{count: 3, event: {{type: t, source: /g, data: {{n: "{{n}}"}}}}}}
  targets:
    - {{name: a, type: file, config: {{path: "{blocker}/a"}}}}
    - {{name: b, type: file, config: {{path: "{blocker}/b"}}}}
    - {{name: dlq, type: file, config: {{path: "{tmp_path}/dlq"}}}}
  triggers:
    - {{name: to-a, target: a, delivery: {{retries: 0}}}}
    - {{name: to-b, target: b, delivery: {{retries: 0}}}}
  deadLetter: dlq
"""
    )
    r = meshline("run", str(spec))
    assert r.returncode == 0, r.stderr
    rows = _rows(tmp_path / "dlq")
    assert len(rows) == 6
    assert sorted((row["meshlinetrigger"], row["id"]) for row in rows) == sorted(
        (t, i) for t in ("to-a", "to-b") for i in {row["id"] for row in rows}
    )
    assert all(
        row["meshlineerrorstage"] == "deliver" and "cannot write" in row["meshlineerror"] for row in rows
    )
