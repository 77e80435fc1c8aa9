"""azure.eventhubs and azure.activitylogs through a Kafka broker that logs in like Event Hubs.

The broker's SASL_PLAINTEXT listener accepts user ``$ConnectionString`` with the
connection string as password — Event Hubs' Kafka endpoint login (minus TLS).
"""

from __future__ import annotations

import base64

import orjson
import pytest

from tests.conftest import ROOT
from tests.harness import rows_in
from tests.integration.kafka.activitylog_data import record
from tests.integration.kafka.support import drain, fully_committed, new_topic, produce
from tests.servers.kafka import EVENTHUBS_CONNECTION_STRING

pytestmark = pytest.mark.integration

PIPELINE = ROOT / "pipelines" / "activitylogs-failed-admin.yaml"


def _header(m, name: str) -> str | None:
    for k, v in m.headers() or ():
        if k == name:
            return v.decode()
    return None


def test_failed_admin_operations_one_event_per_record(meshline, kafka):
    hub = new_topic(kafka.bootstrap, 2, "insights-activity-logs")
    messages = []
    failed: dict[str, dict] = {}
    for m in range(6):  # 6 messages x 4 records: one failed admin op, one success, two other categories
        records = [
            record(m * 10 + 1, result="Failure", operation="MICROSOFT.STORAGE/STORAGEACCOUNTS/DELETE"),
            record(m * 10 + 2, event_data_id=m % 2 == 0),
            record(m * 10 + 3, category="Policy", result="Failure"),
            record(m * 10 + 4, category="ServiceHealth"),
        ]
        failed[records[0]["correlationId"] + "-" + records[0]["eventDataId"]] = records[0]
        messages.append((None, orjson.dumps({"records": records}), None))
    messages.append((None, b'{"records": "not a list"}', None))
    messages.append((None, b"\x00 not json at all", None))
    produce(kafka.bootstrap, hub, messages)
    out = f"{hub}-alerts"
    group = "$Default"
    r = meshline(
        "run",
        str(PIPELINE),
        "--runner",
        "direct",
        "--param",
        f"connection_string={EVENTHUBS_CONNECTION_STRING}",
        "--param",
        f"event_hub={hub}",
        "--param",
        f"endpoint={kafka.sasl_bootstrap}",
        "--param",
        "security=SASL_PLAINTEXT",
        "--param",
        f"bootstrap={kafka.bootstrap}",
        "--param",
        f"topic={out}",
        "--param",
        f"dead_letter_topic={out}-dlq",
        "--param",
        "idle=3s",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "SharedAccessKey=" not in r.stdout + r.stderr  # the secret never shows

    alerts = drain(kafka.bootstrap, out, expect=len(failed))
    assert sorted(_header(m, "ce_id") for m in alerts) == sorted(failed)
    for m in alerts:
        rec = failed[_header(m, "ce_id")]
        assert _header(m, "ce_type") == "com.microsoft.azure.monitor.activity-log"
        assert _header(m, "ce_source") == rec["resourceId"]
        assert _header(m, "ce_time") == rec["time"]
        assert _header(m, "ce_subject") == "MICROSOFT.STORAGE/STORAGEACCOUNTS/DELETE"
        assert _header(m, "ce_category") == "Administrative"
        assert orjson.loads(m.value()) == rec  # data = the record, unchanged

    dead = [orjson.loads(m.value()) for m in drain(kafka.bootstrap, f"{out}-dlq", expect=2)]
    assert sorted(d["meshlineerrorstage"] for d in dead) == ["decode", "decode"]
    assert any("not JSON" in d["meshlineerror"] for d in dead)
    assert any('{"records": [...]}' in d["meshlineerror"] for d in dead)
    bodies = sorted(base64.b64decode(d["data_base64"]) for d in dead)  # the raw bodies travel along
    assert bodies == sorted([b'{"records": "not a list"}', b"\x00 not json at all"])
    assert fully_committed(kafka.bootstrap, hub, group) == {}


def test_eventhubs_source_with_namespace_key(meshline, kafka, tmp_path):
    hub = new_topic(kafka.bootstrap, 2, "telemetry")
    records = [(f"dev-{i % 5}".encode(), orjson.dumps({"t": i}), None) for i in range(20)]
    produce(kafka.bootstrap, hub, records[:10], partition=0)
    produce(kafka.bootstrap, hub, records[10:], partition=1)
    out = tmp_path / "out"
    key = EVENTHUBS_CONNECTION_STRING.split("SharedAccessKey=", 1)[1]
    spec = tmp_path / "eh.yaml"
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: eventhubs-it}}
spec:
  sources:
    - name: hub
      type: azure.eventhubs
      config:
        namespace: meshline-test
        key_name: RootManageSharedAccessKey
        key: "{key}"
        event_hub: {hub}
        consumer_group: telemetry-readers
        endpoint_url: "{kafka.sasl_bootstrap}"
        security_protocol: SASL_PLAINTEXT
        idle_timeout: 6s
  targets:
    - {{name: out, type: file, config: {{path: "{out}"}}}}
  triggers:
    - {{name: all, target: out}}
""")
    r = meshline("run", str(spec), "--runner", "direct")
    assert r.returncode == 0, r.stderr[-3000:]
    assert key not in r.stdout + r.stderr
    events = rows_in(out)
    assert sorted(e["data"]["t"] for e in events) == list(range(20))
    e = events[0]
    assert e["type"] == "com.microsoft.azure.eventhub.message"
    assert e["source"] == f"sb://meshline-test.servicebus.windows.net/{hub}"
    assert e["id"].startswith(f"{hub}-") and e["partitionkey"].startswith("dev-")
    assert fully_committed(kafka.bootstrap, hub, "telemetry-readers") == {}


def test_wrong_eventhubs_key_fails_the_run_without_printing_it(meshline, kafka, tmp_path):
    hub = new_topic(kafka.bootstrap, 1, "denied")
    spec = tmp_path / "eh.yaml"
    wrong = (
        "Endpoint=sb://meshline-test.servicebus.windows.net/;SharedAccessKeyName=x;SharedAccessKey=d3Jvbmc="
    )
    spec.write_text(f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: eventhubs-denied}}
spec:
  sources:
    - name: hub
      type: azure.eventhubs
      config:
        connection_string: "{wrong}"
        event_hub: {hub}
        endpoint_url: "{kafka.sasl_bootstrap}"
        security_protocol: SASL_PLAINTEXT
        idle_timeout: 6s
  targets:
    - {{name: out, type: log}}
  triggers:
    - {{name: all, target: out}}
""")
    r = meshline("run", str(spec), "--runner", "direct", timeout=180)
    assert r.returncode != 0
    assert "login to" in r.stderr and "Invalid username or password" in r.stderr
    assert "d3Jvbmc=" not in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
