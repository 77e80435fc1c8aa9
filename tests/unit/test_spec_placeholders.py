"""``meshline validate`` checks a file whose required parameters have no value, with placeholders.

A placeholder (``${params.x}`` left in place) must never be judged by a value rule — a
type, a pattern, or a connector's own cross-key rule (``url: must start with amqp://``) —
for any key of any connector or transformation.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from meshline import registry
from meshline.errors import SpecError
from meshline.spec import load_text

# A valid config of each component, as small as possible.
MINIMAL: dict[tuple[str, str], dict[str, Any]] = {
    ("source", "amqp"): {"url": "amqp://127.0.0.1/", "queue": "q"},
    ("source", "aws.s3"): {"queue_url": "https://sqs.us-east-1.amazonaws.com/1/q"},
    ("source", "aws.sqs"): {"queue_url": "https://sqs.us-east-1.amazonaws.com/1/q"},
    ("source", "azure.activitylogs"): {
        "connection_string": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v"
    },
    ("source", "azure.eventhubs"): {
        "connection_string": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;"
        "SharedAccessKey=v;EntityPath=hub"
    },
    ("source", "file"): {"path": "in.jsonl"},
    ("source", "generate"): {"count": 1},
    ("source", "google.pubsub"): {"project": "p", "subscription": "s"},
    ("source", "google.storage"): {"bucket": "b", "project": "p", "subscription": "s"},
    ("source", "http"): {"port": 8080},
    ("source", "kafka"): {"bootstrap_servers": "127.0.0.1:9092", "topics": ["t"]},
    ("target", "amqp"): {"url": "amqp://127.0.0.1/"},
    ("target", "aws.s3"): {"bucket": "b"},
    ("target", "aws.sqs"): {"queue_url": "https://sqs.us-east-1.amazonaws.com/1/q"},
    ("target", "azure.datalake"): {"account_url": "https://a.blob.core.windows.net", "container": "c-1"},
    ("target", "elasticsearch"): {"hosts": ["http://127.0.0.1:9200"], "index": "i"},
    ("target", "file"): {"path": "out"},
    ("target", "google.storage"): {"bucket": "b"},
    ("target", "http"): {"url": "http://127.0.0.1:8080/"},
    ("target", "kafka"): {"bootstrap_servers": "127.0.0.1:9092", "topic": "t"},
    ("target", "log"): {},
    ("target", "snowflake"): {"account": "a", "user": "u", "database": "d", "schema": "s", "table": "t"},
    ("transformation", "http"): {"url": "http://127.0.0.1:8080/"},
    ("transformation", "jq"): {"program": "."},
    ("transformation", "mapping"): {},
    ("transformation", "python"): {"code": "def handle(event):\n    return event\n"},
    ("transformation", "xml2json"): {},
    ("transformation", "xslt"): {
        "stylesheet": '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/>'
    },
}

# Keys that exclude others (a rule about which keys are given, not about their values):
# when the key is a placeholder, these keys of MINIMAL are left out.
INSTEAD: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("transformation", "python", "function"): ("code",),
    ("target", "azure.datalake", "connection_string"): ("account_url",),
    ("source", "google.storage", "state"): ("subscription",),
    ("source", "google.storage", "state_path"): ("subscription",),
}
# Keys that need another (a rule about presence): given a real value beside the placeholder.
WITH: dict[tuple[str, str, str], dict[str, Any]] = {
    ("source", "http", "password"): {"username": "u"},
    ("target", "http", "password"): {"username": "u"},
    ("source", "aws.s3", "access_key_id"): {"secret_access_key": "example-secret-access-key"},
    ("source", "aws.s3", "secret_access_key"): {"access_key_id": "EXAMPLEACCESSKEYID"},
    ("source", "aws.sqs", "access_key_id"): {"secret_access_key": "example-secret-access-key"},
    ("source", "aws.sqs", "secret_access_key"): {"access_key_id": "EXAMPLEACCESSKEYID"},
    ("target", "aws.s3", "access_key_id"): {"secret_access_key": "example-secret-access-key"},
    ("target", "aws.s3", "secret_access_key"): {"access_key_id": "EXAMPLEACCESSKEYID"},
    ("target", "aws.sqs", "access_key_id"): {"secret_access_key": "example-secret-access-key"},
    ("target", "aws.sqs", "secret_access_key"): {"access_key_id": "EXAMPLEACCESSKEYID"},
    ("source", "google.storage", "state"): {"mode": "poll"},
    ("source", "google.storage", "state_path"): {"mode": "poll"},
    ("source", "google.storage", "poll_interval"): {"mode": "poll"},
}
SECTIONS = {"source": "sources", "target": "targets", "transformation": "transformations"}


def _components() -> list[tuple[str, str]]:
    return [(kind, type_id) for kind in SECTIONS for type_id in registry.ids(kind)]  # type: ignore[arg-type]


def _file(kind: str, type_id: str, config: dict[str, Any]) -> str:
    """An integration with the component under test, the parameter p required and given no value."""
    sources = [{"name": "in", "type": "generate", "config": {"count": 1}}]
    targets = [{"name": "out", "type": "log"}]
    transformations: list[dict[str, Any]] = []
    trigger: dict[str, Any] = {"name": "t", "target": "out"}
    item = {"name": "x", "type": type_id, "config": config}
    if kind == "source":
        sources = [item]
    elif kind == "target":
        targets = [item]
        trigger["target"] = "x"
    else:
        transformations = [item]
        trigger["steps"] = ["x"]
    spec = {
        "parameters": [{"name": "p", "required": True}],
        "sources": sources,
        "transformations": transformations,
        "targets": targets,
        "triggers": [trigger],
    }
    head = {"apiVersion": "meshline.dev/v1alpha1", "kind": "Integration", "metadata": {"name": "v"}}
    return json.dumps({**head, "spec": spec})  # JSON is YAML


def test_every_component_has_a_minimal_config():
    assert sorted(MINIMAL) == sorted(_components())


@pytest.mark.parametrize(("kind", "type_id"), sorted(MINIMAL))
def test_the_minimal_configs_are_valid(kind: str, type_id: str):
    load_text(_file(kind, type_id, MINIMAL[(kind, type_id)]), "v.yaml", strict=False)


def _cases() -> list[tuple[str, str, str]]:
    out = []
    for kind, type_id in _components():
        component = registry.lookup(kind, type_id)  # type: ignore[arg-type]
        assert component is not None
        out.extend((kind, type_id, f.name) for f in dataclasses.fields(component.config))
    return out


@pytest.mark.parametrize(("kind", "type_id", "key"), _cases())
def test_a_placeholder_in_any_key_is_not_judged(kind: str, type_id: str, key: str):
    left_out = INSTEAD.get((kind, type_id, key), ())
    config = {k: v for k, v in MINIMAL[(kind, type_id)].items() if k not in left_out}
    config.update(WITH.get((kind, type_id, key), {}))
    config[key] = "${params.p}"
    try:
        result = load_text(_file(kind, type_id, config), "v.yaml", strict=False)
    except SpecError as e:
        pytest.fail(f"{kind} {type_id}: {key}: a placeholder was judged: {e}")
    assert any("missing value for required parameter 'p'" in w.message for w in result.warnings)


def test_a_rule_that_is_broken_without_placeholders_is_still_reported():
    with pytest.raises(SpecError) as e:
        load_text(_file("source", "amqp", {"url": "http://127.0.0.1/", "queue": "q"}), "v.yaml", strict=False)
    assert "spec.sources[0].config.url: must start with amqp:// or amqps://" in str(e.value)
