"""snowflake target against fakesnow (server mode): rows equal the events, no duplicates on replay.

The default ``load: auto`` path is exercised (PUT to a temporary stage, COPY INTO
a temporary VARIANT load table, MERGE on source+id); ``load: insert`` (multi-row
INSERT into the load table, same MERGE) has its own test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.servers.fakesnow import connect

pytestmark = pytest.mark.integration

TABLE_DDL = (
    "CREATE OR REPLACE TABLE {table} (ID VARCHAR, SOURCE VARCHAR, TYPE VARCHAR, SUBJECT VARCHAR, "
    "TIME TIMESTAMP_TZ, ATTRIBUTES VARIANT, DATA VARIANT)"
)


def _sql(url: str, *statements: str) -> list[Any]:
    conn: Any = connect(url)
    try:
        cur = conn.cursor()
        out: list[Any] = []
        for s in statements:
            out = cur.execute(s).fetchall()
        return out
    finally:
        conn.close()


@pytest.fixture(scope="module")
def database(fakesnow_url):
    _sql(
        fakesnow_url, "CREATE DATABASE IF NOT EXISTS MESHLINE", "CREATE SCHEMA IF NOT EXISTS MESHLINE.PUBLIC"
    )
    return fakesnow_url


def _events(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        e: dict[str, Any] = {
            "specversion": "1.0",
            "id": f"order-{i}",
            "source": "/shop/eu" if i % 2 else "/shop/us",
            "type": "com.example.order.created",
            "time": f"2026-11-25T10:{i % 60:02d}:00Z",
            "data": {"n": i, "amount": i * 1.5, "items": [{"sku": f"s{i}", "q": 2}], "note": 'ü "q"'},
        }
        if i % 3 == 0:
            e["subject"] = f"customer-{i}"
            e["region"] = "emea"  # an extension attribute
        out.append(e)
    return out


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def _integration(tmp: Path, url: str, input_path: Path, table: str, extra: str = "") -> Path:
    f = tmp / f"sf-{table.lower()}.yaml"
    f.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: snowflake-it}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{input_path}"}}}}
  targets:
    - name: warehouse
      type: snowflake
      config:
        account: fakesnow
        user: meshline
        password: not-a-real-password
        database: MESHLINE
        schema: PUBLIC
        table: {table}
        endpoint_url: "{url}"
        batch_size: 700
        {extra}
    - {{name: dlq, type: file, config: {{path: "{tmp}/dlq-{table.lower()}"}}}}
  triggers:
    - name: all
      target: warehouse
      delivery: {{retries: 1, backoff: {{delay: 10ms}}}}
  deadLetter: dlq
""")
    return f


def _rows(url: str, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = _sql(url, f"SELECT ID, SOURCE, TYPE, SUBJECT, TIME, ATTRIBUTES, DATA FROM {table}")
    out = {}
    for id_, source, type_, subject, time_, attrs, data in rows:
        assert (source, id_) not in out, f"duplicate row for {source} {id_}"
        out[(source, id_)] = {
            "type": type_,
            "subject": subject,
            "time": time_.isoformat().replace("+00:00", "Z") if time_ else None,
            "attributes": orjson.loads(attrs),
            "data": orjson.loads(data),
        }
    return out


def _dead(tmp: Path, table: str) -> list[dict[str, Any]]:
    folder = tmp / f"dlq-{table.lower()}"
    if not folder.exists():
        return []
    return [
        orjson.loads(line) for p in sorted(folder.rglob("*.jsonl")) for line in p.read_bytes().splitlines()
    ]


def _assert_rows_equal_events(rows: dict[tuple[str, str], dict[str, Any]], events: list[dict[str, Any]]):
    assert len(rows) == len(events)
    for e in events:
        row = rows[(e["source"], e["id"])]
        attrs = {k: v for k, v in e.items() if k != "data"}
        assert row["attributes"] == attrs
        assert row["data"] == e["data"]
        assert row["type"] == e["type"]
        assert row["subject"] == e.get("subject")
        assert row["time"] == e["time"]


def test_rows_equal_events_and_replay_adds_no_duplicates(meshline, database, tmp_path):
    table = "ORDERS_COPY"
    _sql(database, TABLE_DDL.format(table=table))
    events = _events(2000)
    # the same event twice in one input: deduplicated inside the batch too
    src = _write(tmp_path / "orders.jsonl", events + events[:5])
    spec = _integration(tmp_path, database, src, table)
    for _ in range(2):  # the second run is a replay of the same input
        done = meshline("run", str(spec), "--runner", "direct", timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "loading with INSERT" not in done.stderr  # the PUT + COPY INTO path was taken
        assert _dead(tmp_path, table) == []
        _assert_rows_equal_events(_rows(database, table), events)


def test_insert_load_path(meshline, database, tmp_path):
    table = "ORDERS_INSERT"
    _sql(database, TABLE_DDL.format(table=table))
    events = _events(600)
    spec = _integration(tmp_path, database, _write(tmp_path / "in.jsonl", events), table, "load: insert")
    for _ in range(2):
        done = meshline("run", str(spec), "--runner", "direct", timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    assert _dead(tmp_path, table) == []
    _assert_rows_equal_events(_rows(database, table), events)


def test_missing_table_dead_letters_every_event_with_the_reason(meshline, database, tmp_path):
    events = _events(50)
    table = "NO_SUCH_TABLE"
    spec = _integration(tmp_path, database, _write(tmp_path / "in.jsonl", events), table)
    done = meshline("run", str(spec), "--runner", "direct", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    dead = _dead(tmp_path, table)
    assert sorted(d["id"] for d in dead) == sorted(e["id"] for e in events)
    assert all(d["meshlineerrorstage"] == "deliver" for d in dead)
    assert "NO_SUCH_TABLE" in dead[0]["meshlineerror"] and "does not exist" in dead[0]["meshlineerror"]
    assert "not-a-real-password" not in done.stderr + done.stdout


def test_the_ready_pipeline_loads_orders(meshline, database, tmp_path):
    from tests.conftest import ROOT

    table = "ORDERS_PIPELINE"
    _sql(database, TABLE_DDL.format(table=table))
    orders = _sample_orders(ROOT / "pipelines/data/orders.jsonl")
    # "n/a" amounts fail the step and are dead-lettered
    wanted = [
        o
        for o in orders
        if o["type"].startswith("com.example.order.") and o["data"]["amount"].replace(".", "").isdigit()
    ]
    params = {
        "endpoint_url": database,
        "account": "fakesnow",
        "password": "not-a-real-password",
        "database": "MESHLINE",
        "schema": "PUBLIC",
        "table": table,
        "rejects": str(tmp_path / "rejects"),
    }
    args = [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
    done = meshline("run", str(ROOT / "pipelines/orders-to-snowflake.yaml"), "--runner", "direct", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _rows(database, table)
    assert len(rows) == len(wanted)
    one = wanted[0]
    assert rows[(one["source"], one["id"])]["data"]["amount"] == float(one["data"]["amount"])


def _sample_orders(path: Path) -> list[dict[str, Any]]:
    """The sample's well-formed events (it also has broken lines, which the source dead-letters)."""
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            pass
    return out
