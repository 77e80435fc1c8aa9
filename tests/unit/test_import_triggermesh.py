"""``meshline import triggermesh``: TriggerMesh/Knative manifests → an integration that validates and runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshline.importer.cel import Unsupported, convert_expression, iso_duration
from meshline.importer.triggermesh import convert, load_manifests

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "triggermesh"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT0.2S", "200ms"),
        ("PT1S", "1s"),
        ("PT1M", "60s"),
        ("PT1H30M", "5400s"),
        ("P1D", "86400s"),
        ("PT2.5S", "2.5s"),
    ],
)
def test_iso_durations(text, expected):
    assert iso_duration(text) == expected


def test_bad_iso_duration_is_reported():
    with pytest.raises(Unsupported, match="ISO-8601"):
        iso_duration("5 seconds")


def test_filter_expressions():
    assert convert_expression("$type.(string) == \"a.b\" && $source == 's'") == {
        "exact": {"type": "a.b", "source": "s"}
    }
    assert convert_expression("$data.order.total.(int64) > 100 || ($region == 'eu')") == {
        "jq": '(.data["order"]["total"] | tonumber) > 100 or ( .region == "eu" )'
    }
    with pytest.raises(Unsupported, match="startsWith"):
        convert_expression('$type.(string).startsWith("x")')
    with pytest.raises(Unsupported):
        convert_expression("!($type == 'a')")


def _import(folder: str):
    return convert(load_manifests([str(DATA / folder)]), name="imported")


def test_supported_sample_converts_without_problems():
    result = _import("supported")
    assert result.problems == []
    spec = result.integration["spec"]
    assert [s["type"] for s in spec["sources"]] == ["http"]
    assert spec["sources"][0]["config"]["password"] == "${params.webhook_auth_password}"
    assert {p["name"]: p["default"] for p in spec["parameters"]} == {
        "webhook_auth_password": "${env.WEBHOOK_AUTH_PASSWORD}",
        "audit_creds_password": "${env.AUDIT_CREDS_PASSWORD}",
    }
    assert all(p["secret"] for p in spec["parameters"])
    triggers = {t["name"]: t for t in spec["triggers"]}
    assert triggers["summarize-placed"]["steps"] == ["order-summary"]
    assert triggers["summarize-placed"]["delivery"] == {
        "retries": 2,
        "backoff": {"policy": "linear", "delay": "1s"},
    }
    # A Bumblebee reply re-enters the broker and is taken by the trigger on its new type.
    chained = triggers["flag-big-eu-then-audit"]
    assert chained["steps"] == ["mark-audit"] and chained["target"] == "audit-log"
    assert chained["filters"][0]["all"][0] == {"prefix": {"type": "com.example.order."}}
    assert chained["delivery"]["deadLetter"] == "parking-lot"  # the broker's delivery
    assert triggers["cancellations"]["filters"][1]["jq"].startswith('(.data["reason"]')
    assert spec["deadLetter"] == "parking-lot"
    assert any("webhook-auth/password" in n for n in result.notes)


def test_all_kinds_reports_what_it_cannot_convert():
    result = _import("all-kinds")
    text = "\n".join(result.problems)
    assert "SplunkTarget/siem" in text and "Splitter/per-click" in text
    assert "HTTPPollerSource/status-page" in text and "Filter/deletes" in text
    assert len(result.problems) == 4, text
    types = {s["name"]: s["type"] for s in result.integration["spec"]["sources"]}
    assert types == {
        "orders-queue": "aws.sqs",
        "uploads": "aws.s3",
        "reports-bucket": "google.storage",
        "telemetry": "google.pubsub",
        "subscription-activity": "azure.activitylogs",
        "devices": "azure.eventhubs",
        "clicks": "kafka",
        "payments": "kafka",
    }
    sqs = result.integration["spec"]["sources"][0]["config"]
    assert sqs == {
        "queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
        "region": "eu-west-1",
    }
    steps = {s["name"]: s["type"] for s in result.integration["spec"]["transformations"]}
    assert steps == {"report-xml": "xslt", "report-json": "xml2json"}


def test_cli_output_validates_and_its_tests_run(meshline, tmp_path):
    """The supported sample: `meshline validate` accepts it and `meshline test` runs it."""
    out = tmp_path / "imported.yaml"
    r = meshline("import", "triggermesh", str(DATA / "supported"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "not converted" not in r.stderr
    doc = yaml.safe_load(out.read_text())
    assert doc["spec"]["tests"] == []  # the importer leaves the cases to the user; add ours:
    doc["spec"]["tests"] = [
        {
            "name": "a placed order is summarized for fulfilment",
            "inputs": {
                "orders-webhook": [
                    {
                        "type": "com.example.order.placed",
                        "source": "shop",
                        "id": "o1",
                        "data": {"items": [{"price": 2}, {"price": 3}]},
                    }
                ]
            },
            "expect": {
                "fulfilment": [{"id": "o1", "data": {"order": None, "lines": 2, "total": 5}}],
                "audit-log": [],
                "parking-lot": [],
            },
        },
        {
            "name": "a big EU order is marked for audit",
            "inputs": {
                "orders-webhook": [
                    {
                        "type": "com.example.order.big",
                        "source": "shop",
                        "id": "o2",
                        "region": "eu",
                        "data": {"card": "4111", "sum": 900},
                    }
                ]
            },
            "expect": {
                "audit-log": [
                    {
                        "id": "o2",
                        "type": "com.example.order.audit",
                        "reviewer": "eu-desk",
                        "data": {"sum": 900},
                    }
                ],
                "fulfilment": [],
            },
        },
        {
            "name": "a cancellation needs a reason and an amount",
            "inputs": {
                "orders-webhook": [
                    {
                        "type": "com.example.order.cancelled",
                        "source": "shop",
                        "id": "c1",
                        "data": {"reason": "late", "amount": 12},
                    },
                    {
                        "type": "com.example.order.cancelled",
                        "source": "shop",
                        "id": "c2",
                        "data": {"reason": "late", "amount": 3},
                    },
                ]
            },
            "expect": {"cancellations": [{"id": "c1"}]},
        },
    ]
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = meshline("validate", str(out))
    assert r.returncode == 0, r.stderr
    r = meshline("test", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "3 passed, 0 failed"


def test_cli_all_kinds_only_unavailable_connectors_fail_validation(meshline, tmp_path):
    out = tmp_path / "all.yaml"
    r = meshline(
        "import",
        "triggermesh",
        str(DATA / "all-kinds"),
        str(DATA / "supported" / "targets.yaml"),
        "-o",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("not converted:")]) == 4, r.stderr
    # Credentials a user supplies at run time (the importer made them parameters).
    cs = "Endpoint=sb://ops-events.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=k"
    r = meshline(
        "validate",
        str(out),
        "--param",
        f"subscription_activity_connection_string={cs}",
        env={"EVENTHUBS_CONNECTION_STRING": cs + ";EntityPath=devices"},
    )
    errors = [ln for ln in r.stderr.splitlines() if ": warning:" not in ln and ln.strip()]
    # Whatever fails is only a connector this build does not have yet (SPEC §7 "planned" ids).
    assert all("is not available in this version" in ln for ln in errors), errors
    assert r.returncode == (1 if errors else 0)
