"""``meshline import triggermesh``: TriggerMesh/Knative manifests → an integration that validates and runs.

The manifests in ``tests/data/triggermesh/`` are written for these tests, in the shapes of
TriggerMesh's own samples (``config/samples/`` of github.com/triggermesh/triggermesh):
``samples/`` holds a Transformation whose sink is the Broker, a reply chain whose trigger
names join to more than 63 characters, a KafkaSource with GSSAPI and a CA, a
CloudEventsTarget with basic auth, an SQS source with ``visibilityTimeout``, an
Elasticsearch target with ``payloadPolicy``, unreachable manifests and inline secrets.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshline.compiler.testing import run_tests
from meshline.importer.attributes import static_match
from meshline.importer.cel import Unsupported, convert_expression, iso_duration
from meshline.importer.manifest import dns_label, go_duration, unique
from meshline.importer.triggermesh import ImportResult, convert, load_manifests
from meshline.spec import load_text

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "triggermesh"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# Values the user passes for the parameters of samples/ (none of them is in the manifests).
SAMPLE_PARAMS = {
    "shop_aws_access_key_id": "AKIAPARAMONLY",
    "shop_aws_secret_access_key": "param-only-secret",
    "partner_api_password": "param-only-partner",
    "search_creds_password": "param-only-search",
    "click_archive_password": "param-only-archive",
    "click_stream_sasl_mechanism": "SCRAM-SHA-512",
    "click_stream_username": "clicks",
    "click_stream_password": "param-only-clicks",
    "shop_kerberos_ca_pem": "/etc/ssl/shop-ca.pem",
}


def _import(*folders: str, name: str = "imported") -> ImportResult:
    return convert(load_manifests([str(DATA / f) for f in folders]), name=name)


def _docs(text: str) -> list[tuple[str, dict[str, Any]]]:
    return [("inline.yaml", d) for d in yaml.safe_load_all(text) if d]


def _run(result: ImportResult, cases: list[dict[str, Any]], params: dict[str, str]) -> list[Any]:
    """Run the imported integration in-process on the cases, as `meshline test` would."""
    assert result.integration is not None
    doc = copy.deepcopy(result.integration)
    doc["spec"]["tests"] = cases
    loaded = load_text(yaml.safe_dump(doc, sort_keys=False), params=params, strict=True)
    return run_tests(loaded.integrations[0])


def _lines_about(lines: list[str], manifest: str, path: str = "") -> list[str]:
    return [ln for ln in lines if f"{manifest}: {path}" in ln]


# --------------------------------------------------------------------------- small pieces


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


@pytest.mark.parametrize(
    ("text", "expected"), [("30m", "1800s"), ("5m30s", "330s"), ("500ms", "500ms"), ("1.5s", "1.5s")]
)
def test_go_durations(text, expected):
    assert go_duration(text) == expected


def test_bad_durations_are_reported():
    with pytest.raises(Unsupported, match="ISO-8601"):
        iso_duration("5 seconds")
    with pytest.raises(Unsupported, match="duration"):
        go_duration("5 minutes")


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


def test_static_match_decides_only_what_the_known_attributes_decide():
    known = {"type": "com.example.order.audit"}
    assert static_match({"exact": {"type": "com.example.order.placed"}}, known) is False
    assert static_match({"prefix": {"type": "com.example.order."}}, known) is True
    assert static_match({"exact": {"type": "com.example.order.audit", "region": "eu"}}, known) is None
    assert static_match({"not": {"exact": {"type": "com.example.order.audit"}}}, known) is False
    assert static_match({"any": [{"exact": {"region": "eu"}}, {"suffix": {"type": ".audit"}}]}, known) is True
    assert static_match({"cesql": "type = 'x'"}, known) is None


def test_long_labels_are_shortened_with_a_stable_hash():
    long_a = "enrich-customer-orders-with-region-data-then-normalize-regional-customer-orders"
    long_b = "enrich-customer-orders-with-region-data-then-normalize-regional-customer-orders-2"
    a, b = dns_label(long_a), dns_label(long_b)
    assert len(a) <= 63 and len(b) <= 63 and DNS_LABEL.match(a) and DNS_LABEL.match(b)
    assert a != b and a == dns_label(long_a)  # distinct and deterministic
    assert re.search(r"-[0-9a-f]{8}$", a)
    assert dns_label("Orders.Queue_1") == "orders-queue-1"
    taken = [dns_label(long_a)]
    assert unique(long_a, taken) not in taken and len(unique(long_a, taken)) <= 63


# --------------------------------------------------------------------------- the supported sample


def test_supported_sample_converts_without_problems_and_runs():
    result = _import("supported")
    assert result.problems == []
    spec = result.integration["spec"]
    assert [s["type"] for s in spec["sources"]] == ["http"]
    assert spec["sources"][0]["config"]["password"] == "${params.webhook_auth_password}"
    # Secret references are required secret parameters: no default that could hold a value.
    params = {p.pop("name"): p for p in copy.deepcopy(spec["parameters"])}
    assert list(params) == ["webhook_auth_password", "audit_creds_password"]
    assert all(
        p.keys() == {"description", "required", "secret"} and p["required"] and p["secret"]
        for p in params.values()
    )
    assert "Secret webhook-auth, key password" in params["webhook_auth_password"]["description"]
    assert any("--param webhook_auth_password=" in n for n in result.notes)
    triggers = {t["name"]: t for t in spec["triggers"]}
    assert triggers["summarize-placed"]["delivery"] == {
        "retries": 2,
        "backoff": {"policy": "linear", "delay": "1s"},
    }
    assert triggers["flag-big-eu-then-audit"]["delivery"]["deadLetter"] == "parking-lot"  # the broker's
    assert spec["deadLetter"] == "parking-lot"
    params = {"webhook_auth_password": "pw", "audit_creds_password": "pw2"}
    cases = [
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
            "name": "a big EU order is re-typed, goes back through the broker and reaches the audit service",
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
    results = _run(result, cases, params)
    assert [(r.name, r.problems) for r in results if not r.passed] == []


# --------------------------------------------------------------------------- the samples (issue 17, item 6)


@pytest.fixture(scope="module")
def samples() -> ImportResult:
    return _import("samples")


def test_a_reply_through_the_broker_keeps_its_steps(samples):
    """The Transformation whose sink is the broker, and the one that replies, both run (not only in YAML)."""
    triggers = {t["name"]: t for t in samples.integration["spec"]["triggers"]}
    chain = [
        t
        for n, t in triggers.items()
        if n.startswith("enrich-customer-orders-with-region-data-then-normalize")
    ]
    assert len(chain) == 1 and chain[0]["steps"] == ["tag-region", "normalize-order"]
    assert chain[0]["target"] == "partner-api"
    order = {"type": "com.amazon.sqs.message", "source": "arn:aws:sqs:eu-central-1:1:incoming-orders"}
    cases = [
        {
            "name": "an order is tagged, normalized and delivered; the tagged order is indexed",
            "inputs": {"order-queue": [{**order, "id": "o1", "data": {"total": 42, "item": "lamp"}}]},
            "expect": {
                "partner-api": [
                    {
                        "id": "o1",
                        "type": "com.example.order.normalized",
                        "region": "eu",
                        "data": {"amount": 42, "item": "lamp", "routing": {"region": "eu"}},
                    }
                ],
                "order-index": [
                    {
                        "id": "o1",
                        "type": "com.example.order.regional",
                        "region": "eu",
                        "data": {"total": 42, "item": "lamp", "routing": {"region": "eu"}},
                    }
                ],
                "click-archive": [],
            },
        },
        {
            "name": "the CESQL filter after the step still decides: a US regional order is not indexed",
            "inputs": {
                "order-queue": [
                    {
                        **order,
                        "type": "com.example.order.regional",
                        "region": "us",
                        "id": "o2",
                        "data": {"total": 1},
                    }
                ]
            },
            "expect": {
                "partner-api": [{"id": "o2", "type": "com.example.order.normalized", "data": {"amount": 1}}],
                "order-index": [],
            },
        },
        {
            "name": "clicks from Kafka are archived (the filter on TriggerMesh's Kafka type was rewritten)",
            "inputs": {
                "click-stream": [
                    {
                        "type": "dev.meshline.kafka.message",
                        "source": "kafka://b/web-clicks",
                        "id": "c1",
                        "data": {"page": "/"},
                    }
                ]
            },
            "expect": {"click-archive": [{"id": "c1"}], "partner-api": [], "order-index": []},
        },
    ]
    results = _run(samples, cases, SAMPLE_PARAMS)
    assert [(r.name, r.problems) for r in results if not r.passed] == []


def test_trigger_names_are_short_unique_dns_labels(samples):
    names = [t["name"] for t in samples.integration["spec"]["triggers"]]
    assert len(names) == len(set(names))
    assert all(len(n) <= 63 and DNS_LABEL.match(n) for n in names), names
    long = [n for n in names if re.search(r"-[0-9a-f]{8}$", n)]
    assert len(long) == 3, names  # the three reply chains
    assert names == [t["name"] for t in _import("samples").integration["spec"]["triggers"]]  # stable


def test_gssapi_is_named_and_the_ca_is_carried(samples):
    source = next(s for s in samples.integration["spec"]["sources"] if s["name"] == "click-stream")
    config = source["config"]
    assert config["sasl_mechanism"] == "${params.click_stream_sasl_mechanism}"
    assert config["tls_ca"] == "${params.shop_kerberos_ca_pem}"
    assert config["security_protocol"] == "SASL_SSL"
    lines = _lines_about(samples.problems, "KafkaSource/click-stream")
    gss = [ln for ln in lines if "spec.auth.securityMechanism: GSSAPI (Kerberos) is not supported" in ln]
    assert len(gss) == 1 and "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512" in gss[0]
    assert "--param click_stream_sasl_mechanism=" in gss[0]
    assert len([ln for ln in lines if "spec.auth.kerberos: " in ln]) == 1
    assert any("spec.auth.tls.ca" in n and "--param shop_kerberos_ca_pem=FILE" in n for n in samples.notes)
    # The connector checks the mechanism once it is given.
    text = samples.to_yaml()
    load_text(text, params=SAMPLE_PARAMS, strict=True)
    with pytest.raises(Exception, match="sasl_mechanism"):
        load_text(text, params={**SAMPLE_PARAMS, "click_stream_sasl_mechanism": "GSSAPI"}, strict=True)


def test_options_are_carried_or_named(samples):
    spec = samples.integration["spec"]
    sqs = next(s for s in spec["sources"] if s["name"] == "order-queue")["config"]
    assert sqs["visibility_timeout"] == "330s"
    assert sqs["access_key_id"] == "${params.shop_aws_access_key_id}"
    targets = {t["name"]: t["config"] for t in spec["targets"]}
    assert targets["partner-api"] == {
        "url": "https://partner.example.net/inbound/orders",
        "username": "shop",
        "password": "${params.partner_api_password}",
    }
    assert targets["order-index"]["document"] == "event" and targets["order-index"]["verify"] is False
    dropped = [
        ("ElasticsearchTarget/order-index", "spec.eventOptions.payloadPolicy: "),
        ("KafkaTarget/click-archive", "spec.topicPartitions: "),
        ("Trigger/deliver-normalized-orders-to-partner", "spec.delivery.timeout: "),
        ("Broker/shop", "spec.config: "),
        ("KafkaSource/click-stream", "spec.auth.kerberos: "),
    ]
    for manifest, path in dropped:
        assert len(_lines_about(samples.problems, manifest, path)) == 1, (manifest, path, samples.problems)


@pytest.mark.parametrize("folder", ["supported", "samples", "all-kinds"])
def test_no_converter_trips_over_a_well_formed_manifest(folder):
    # Converters refuse odd shapes as "unexpected shape" lines; none may appear for these.
    assert [p for p in _import(folder).problems if "unexpected shape" in p] == []


def test_unreachable_manifests_are_named(samples):
    for manifest, why in [
        ("Trigger/legacy-audit", "no converted source reaches it"),
        ("HTTPTarget/legacy-audit-api", "no converted source reaches it"),
        ("Secret/legacy-ftp", "nothing converted refers to this Secret"),
    ]:
        assert _lines_about(samples.problems, manifest, why), manifest
    assert not _lines_about(samples.problems, "Secret/shop-aws")  # its keys are parameters
    assert len(samples.problems) == len(set(samples.problems))


def _secret_values(folder: str) -> list[str]:
    """Every secret value written in the manifests: Secret data and inline password/token values."""
    out: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            if "value" in node and re.search(r"(?i)password|token|secret|key", key):
                out.append(str(node["value"]))
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and re.search(r"(?i)authorization", key):
            out.append(node.split()[-1])

    for _, doc in load_manifests([str(DATA / folder)]):
        if doc.get("kind") == "Secret":
            out.extend(str(v) for v in (doc.get("stringData") or {}).values())
        else:
            walk(doc)
    return out


def test_inline_secrets_become_secret_parameters_and_never_appear(samples):
    secrets = _secret_values("samples")
    assert len(secrets) >= 6  # the test sees the values it must not find
    printed = samples.to_yaml() + "\n".join(samples.problems + samples.notes)
    assert [s for s in secrets if s in printed] == []
    params = {p["name"]: p for p in samples.integration["spec"]["parameters"]}
    for name in ("partner_api_password", "click_archive_password"):  # written inline
        assert (
            params[name]["secret"] is True
            and params[name]["required"] is True
            and "default" not in params[name]
        )
        assert [n for n in samples.notes if f"--param {name}=VALUE" in n and "not copied" in n]
    for name in ("shop_aws_secret_access_key", "search_creds_password"):  # from a Secret
        assert (
            params[name]["secret"] is True
            and params[name]["required"] is True
            and "default" not in params[name]
        )


# --------------------------------------------------------------------------- edge cases


def test_unknown_fields_are_reported_by_path():
    result = convert(
        _docs(
            """
apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSSQSSource
metadata: {name: q}
spec:
  arn: arn:aws:sqs:us-east-1:1:q
  receiveOptions: {visibilityTimeout: 30s, maxMessages: 5}
  sink: {ref: {kind: CloudEventsTarget, name: out}}
---
apiVersion: targets.triggermesh.io/v1alpha1
kind: CloudEventsTarget
metadata: {name: out}
spec:
  endpoint: http://out.example/
  retryPolicy: {attempts: 3}
  adapterOverrides: {public: true}
"""
        )
    )
    assert result.integration["spec"]["sources"][0]["config"]["visibility_timeout"] == "30s"
    assert _lines_about(result.problems, "AWSSQSSource/q", "spec.receiveOptions.maxMessages: ")
    assert _lines_about(result.problems, "CloudEventsTarget/out", "spec.retryPolicy: ")
    assert _lines_about(result.problems, "CloudEventsTarget/out", "spec.adapterOverrides: ")
    assert not _lines_about(result.problems, "AWSSQSSource/q", "spec.receiveOptions: ")  # only the unread key


def test_a_loop_through_the_broker_is_reported_and_the_output_validates():
    docs = _docs(
        """
apiVersion: sources.triggermesh.io/v1alpha1
kind: WebhookSource
metadata: {name: hook}
spec:
  eventType: com.example.in
  sink: {ref: {kind: Broker, name: b}}
---
{apiVersion: eventing.knative.dev/v1, kind: Broker, metadata: {name: b}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: everything}
spec:
  broker: b
  subscriber: {ref: {kind: JQTransformation, name: wrap}}
---
apiVersion: flow.triggermesh.io/v1alpha1
kind: JQTransformation
metadata: {name: wrap}
spec:
  query: '{wrapped: .}'
  sink: {ref: {kind: Broker, name: b}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: wrapped}
spec:
  broker: b
  filters: [{suffix: {type: .in}}]
  subscriber: {ref: {kind: CloudEventsTarget, name: out}}
---
apiVersion: targets.triggermesh.io/v1alpha1
kind: CloudEventsTarget
metadata: {name: out}
spec: {endpoint: "http://out.example/"}
"""
    )
    result = convert(docs)
    loops = [p for p in result.problems if "(a loop)" in p]
    assert len(loops) == 1 and "Trigger/everything → Trigger/everything" in loops[0]
    triggers = {t["name"]: t for t in result.integration["spec"]["triggers"]}
    # The reply of the jq step re-enters the broker: the trigger on it runs after the step.
    assert triggers["everything-then-wrapped"]["steps"] == ["wrap", "wrapped-filter"]
    load_text(result.to_yaml(), strict=True)
    cases = [
        {
            "name": "the wrapped event reaches the target once by each path",
            "inputs": {"hook": [{"type": "com.example.in", "source": "s", "id": "1", "data": {"a": 1}}]},
            "expect": {"out": [{"id": "1", "data": {"a": 1}}, {"id": "1", "data": {"wrapped": {"a": 1}}}]},
        }
    ]
    assert [r.problems for r in _run(result, cases, {}) if not r.passed] == []


def test_a_reply_no_trigger_takes_is_named_and_its_step_left_out():
    docs = _docs(
        """
apiVersion: sources.triggermesh.io/v1alpha1
kind: WebhookSource
metadata: {name: hook}
spec: {eventType: com.example.in, sink: {ref: {kind: Broker, name: b}}}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: retype}
spec:
  broker: b
  filter: {attributes: {type: com.example.in}}
  subscriber: {ref: {kind: Transformation, name: x}}
---
apiVersion: flow.triggermesh.io/v1alpha1
kind: Transformation
metadata: {name: x}
spec: {context: [{operation: add, paths: [{key: type, value: com.example.unwanted}]}]}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: direct}
spec: {broker: b, filter: {attributes: {type: com.example.in}}, subscriber: {ref: {kind: Service, name: s}}}
---
{apiVersion: serving.knative.dev/v1, kind: Service, metadata: {name: s}}
"""
    )
    result = convert(docs)
    assert _lines_about(result.problems, "Transformation/x", "its output returns to broker b and no trigger")
    assert [t["name"] for t in result.integration["spec"]["triggers"]] == ["direct"]
    assert "transformations" not in result.integration["spec"]


def test_hostile_shapes_are_refused_per_manifest_never_a_crash():
    src = "apiVersion: sources.triggermesh.io/v1alpha1"
    trigger = "apiVersion: eventing.knative.dev/v1\nkind: Trigger"
    to_b = "sink: {ref: {kind: Broker, name: b}}"
    docs = _docs(
        f"""
{src}
kind: AWSSQSSource
metadata: {{name: a}}
spec: [1, 2]
---
{src}
kind: KafkaSource
metadata: {{name: k}}
spec: {{bootstrapServers: {{x: 1}}, topic: t, sink: broker}}
---
{src}
kind: WebhookSource
metadata: {{name: w}}
spec: {{basicAuthUsername: u, basicAuthPassword: [1], {to_b}}}
---
{src}
kind: WebhookSource
metadata: {{name: ok}}
spec: {{{to_b}}}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {{name: b}}
spec: {{delivery: {{retry: many, backoffDelay: soon}}}}
---
{trigger}
metadata: {{name: t1}}
spec: {{broker: b, filters: nope, subscriber: {{ref: {{kind: Service, name: s}}}}}}
---
{trigger}
metadata: {{name: t2}}
spec: {{broker: b, filter: {{attributes: {{type: x}}}}, subscriber: {{ref: {{kind: Service, name: s}}}}}}
---
{{apiVersion: serving.knative.dev/v1, kind: Service, metadata: {{name: s}}}}
"""
    )
    result = convert(docs)
    assert result.integration is not None
    assert [t["name"] for t in result.integration["spec"]["triggers"]] == ["t2"]
    for manifest in ("AWSSQSSource/a", "KafkaSource/k", "WebhookSource/w", "Trigger/t1"):
        assert _lines_about(result.problems, manifest), manifest
    load_text(result.to_yaml(), strict=True)


def test_a_ping_source_becomes_a_generate_source_at_the_same_rate():
    ping = """
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: NAME}
spec:
  schedule: "SCHEDULE"
  contentType: application/json
  data: '{"greeting": "hello"}'
  sink: {ref: {kind: CloudEventsTarget, name: out}}
"""
    out = """
apiVersion: targets.triggermesh.io/v1alpha1
kind: CloudEventsTarget
metadata: {name: out}
spec: {endpoint: "http://out.example/"}
"""
    every5 = ping.replace("NAME", "every5").replace("SCHEDULE", "*/5 * * * *")
    daily = ping.replace("NAME", "daily").replace("SCHEDULE", "0 9 * * *")
    result = convert(_docs("---".join([every5, daily, out])))
    (source,) = result.integration["spec"]["sources"]
    assert source["type"] == "generate" and source["config"]["rate"] == pytest.approx(1 / 300)
    assert source["config"]["event"]["type"] == "dev.knative.sources.ping"
    assert source["config"]["event"]["data"] == {"greeting": "hello"}
    assert _lines_about(
        result.problems, "PingSource/daily", "spec.schedule '0 9 * * *': only every-N-minutes"
    )
    load_text(result.to_yaml(), strict=True)


def test_nothing_to_convert_writes_nothing(meshline, tmp_path):
    manifest = tmp_path / "poller.yaml"  # a kind with no Meshline source
    manifest.write_text(
        "apiVersion: sources.triggermesh.io/v1alpha1\nkind: HTTPPollerSource\nmetadata: {name: p}\n"
        "spec: {endpoint: 'https://x.example', sink: {ref: {kind: Broker, name: b}}}\n"
    )
    r = meshline("import", "triggermesh", str(manifest))
    assert r.returncode == 2 and r.stdout == ""
    assert "HTTPPollerSource/p: HTTPPollerSource has no Meshline source" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("meshline: no path from a converted source")


def test_all_kinds_reports_what_it_cannot_convert():
    result = _import("all-kinds")
    text = "\n".join(result.problems)
    for manifest in (
        "SplunkTarget/siem",
        "Splitter/per-click",
        "HTTPPollerSource/status-page",
        "Filter/deletes",
    ):
        assert manifest in text
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
    steps = {s["name"]: s["type"] for s in result.integration["spec"]["transformations"]}
    # TriggerMesh's XSLT transformation appends ".response" to the type: a jq step does it here.
    assert steps == {"report-xml": "xslt", "report-xml-response-type": "jq", "report-json": "xml2json"}
    cs = "Endpoint=sb://ops-events.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=k"
    params = {p["name"]: "x" for p in result.integration["spec"]["parameters"]}
    # The activity log source used a service principal: a SAS key name and key replace it.
    assert {"subscription_activity_key_name", "subscription_activity_key"} <= set(params)
    params.update(eventhubs_connection_string=cs + ";EntityPath=devices", kafka_sasl_sasltype="SCRAM-SHA-256")
    load_text(result.to_yaml(), params=params, strict=True)


# --------------------------------------------------------------------------- the command line


def test_cli_imports_a_directory_into_a_valid_integration(meshline, tmp_path):
    """stdout validates with the parameters the notes name; stderr names each dropped item once."""
    r = meshline("import", "triggermesh", str(DATA / "samples"))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "imported.yaml"
    out.write_text(r.stdout)
    wanted = sorted(set(re.findall(r"--param (\w+)=", r.stderr)))
    assert wanted == sorted(SAMPLE_PARAMS)  # stderr names every parameter the output needs
    args = [a for name in wanted for a in ("--param", f"{name}={SAMPLE_PARAMS[name]}")]
    v = meshline("validate", str(out), *args)
    assert v.returncode == 0, v.stderr
    assert [ln for ln in v.stderr.splitlines() if "missing value" in ln] == []
    not_converted = [ln for ln in r.stderr.splitlines() if ln.startswith("not converted: ")]
    assert len(not_converted) == len(set(not_converted))
    for item in (
        "KafkaSource/click-stream: spec.auth.securityMechanism: GSSAPI",
        "KafkaSource/click-stream: spec.auth.kerberos: ",
        "ElasticsearchTarget/order-index: spec.eventOptions.payloadPolicy: ",
        "KafkaTarget/click-archive: spec.topicPartitions: ",
        "Trigger/legacy-audit: no converted source reaches it",
        "HTTPTarget/legacy-audit-api: no converted source reaches it",
        "Secret/legacy-ftp: nothing converted refers to this Secret",
    ):
        assert len([ln for ln in not_converted if item in ln]) == 1, item
    assert [s for s in _secret_values("samples") if s in r.stdout + r.stderr] == []
