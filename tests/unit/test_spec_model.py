"""Phases 5-6 (defaults, model) and the SPEC §1 example loading end to end."""

from __future__ import annotations

import sys
import types
from dataclasses import FrozenInstanceError, dataclass

import pytest

from meshline import registry
from meshline.config import doc
from meshline.spec import (
    Backoff,
    Delivery,
    Parameter,
    TestCase,
    Trigger,
    apply_defaults,
    build_integration,
    load_file,
)


@dataclass(frozen=True, kw_only=True)
class SqsConfig:
    queue_url: str = doc("Queue URL.")
    region: str = doc("AWS region.", "us-east-1")
    endpoint_url: str | None = doc("Endpoint.", None)


@dataclass(frozen=True, kw_only=True)
class EsConfig:
    hosts: list[str] = doc("Hosts.", secret="url")
    index: str = doc("Index.")
    username: str | None = doc("User.", None)
    password: str | None = doc("Password.", None, secret=True)
    api_key: str | None = doc("API key.", None, secret=True)


@dataclass(frozen=True, kw_only=True)
class FileConfig:
    path: str = doc("Path.")
    format: str = doc("Format.", "jsonl")


@dataclass(frozen=True, kw_only=True)
class JqConfig:
    program: str = doc("Program.")
    scope: str = doc("Scope.", "event")


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch):
    classes = {
        ("source", "aws.sqs"): SqsConfig,
        ("target", "elasticsearch"): EsConfig,
        ("target", "file"): FileConfig,
        ("transformation", "jq"): JqConfig,
    }
    components = {
        key: registry.Component(id=key[1], kind=key[0], config=cls, build=print, description=key[1])  # type: ignore[arg-type]
        for key, cls in classes.items()
    }
    monkeypatch.setattr(registry, "lookup", lambda kind, type_id: components.get((kind, type_id)))
    monkeypatch.setattr(registry, "ids", lambda kind: sorted(t for k, t in components if k == kind))
    monkeypatch.setattr(registry, "planned_ids", lambda kind: [])
    jq = types.ModuleType("meshline.transforms.jq")
    jq.compile_jq = lambda program: program  # type: ignore[attr-defined]
    jq.JqCompileError = ValueError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "meshline.transforms.jq", jq)


SPEC_EXAMPLE = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata:
  name: orders-to-search            # lowercase DNS label; names the Beam job
  description: Big orders from SQS are indexed in Elasticsearch.
spec:
  parameters:                       # become --param NAME=VALUE and Flex Template parameters
    - name: queue_url
      description: SQS queue URL
      required: true
    - name: es_password
      secret: true                  # never printed: logs, graph, errors show ***
  sources:
    - name: orders
      type: aws.sqs                 # a connector id (section 7)
      config:
        queue_url: ${params.queue_url}
        region: us-east-1
  transformations:
    - name: normalize
      type: jq
      config:
        program: '.data.total = (.data.amount | tonumber)'
  targets:
    - name: search
      type: elasticsearch
      config: {hosts: ["http://127.0.0.1:9200"], index: orders, password: "${params.es_password}"}
    - name: rejects
      type: file
      config: {path: ./dead-letters/}
  triggers:
    - name: big-orders
      sources: [orders]             # optional; default: every source
      filters:                      # all must match (AND), evaluated in order
        - exact: {type: com.amazon.sqs.message}
        - jq: '.data.amount > 100'
      steps: [normalize]            # transformations, applied in order
      target: search
      delivery:
        retries: 5
        backoff: {policy: exponential, delay: 200ms, max: 30s}   # policy: constant | linear | exponential
        deadLetter: rejects
  deadLetter: rejects               # default dead-letter target for every failure
  tests:
    - name: a big order is indexed
      inputs:
        orders:                       # a source name
          - {type: com.amazon.sqs.message, source: "arn:aws:sqs:us-east-1:1:orders", id: "1", data: {amount: "150"}}
      expect:
        search:                       # a target name
          - {type: com.amazon.sqs.message, data: {amount: "150", total: 150}}
        rejects: []
"""  # noqa: E501 - the SPEC's text, verbatim


def test_the_spec_example_validates(tmp_path):
    path = tmp_path / "orders.yaml"
    path.write_text(SPEC_EXAMPLE)
    result = load_file(path, params={"queue_url": "https://sqs/q", "es_password": "hunter2"}, env={})
    assert result.warnings == []
    (it,) = result.integrations
    assert it.name == "orders-to-search"
    assert it.description == "Big orders from SQS are indexed in Elasticsearch."
    assert it.file == str(path)
    assert it.parameters == (
        Parameter("queue_url", "SQS queue URL", True, None, False),
        Parameter("es_password", "", False, None, True),
    )
    assert it.source("orders").config == {"queue_url": "https://sqs/q", "region": "us-east-1"}
    assert it.source("orders").line == 14
    assert it.target("search").config["password"] == "hunter2"
    assert it.transformation("normalize").type == "jq"
    assert it.triggers == (
        Trigger(
            name="big-orders",
            sources=("orders",),
            filters=({"exact": {"type": "com.amazon.sqs.message"}}, {"jq": ".data.amount > 100"}),
            steps=("normalize",),
            target="search",
            delivery=Delivery(5, Backoff("exponential", 0.2, 30.0), "rejects"),
        ),
    )
    assert it.dead_letter == "rejects"
    assert it.tests == (
        TestCase(
            name="a big order is indexed",
            inputs={
                "orders": [
                    {
                        "type": "com.amazon.sqs.message",
                        "source": "arn:aws:sqs:us-east-1:1:orders",
                        "id": "1",
                        "data": {"amount": "150"},
                    }
                ]
            },
            expect={
                "search": [{"type": "com.amazon.sqs.message", "data": {"amount": "150", "total": 150}}],
                "rejects": [],
            },
        ),
    )
    assert it.redactor.redact("password=hunter2") == "password=***"
    assert "hunter2" not in repr(it)
    with pytest.raises(KeyError):
        it.target("nope")
    with pytest.raises(FrozenInstanceError):
        it.name = "x"  # type: ignore[misc]


def test_the_spec_example_validates_without_secrets_in_validate_mode(tmp_path):
    path = tmp_path / "orders.yaml"
    path.write_text(SPEC_EXAMPLE)
    result = load_file(path, env={}, strict=False)
    assert len(result.warnings) == 1
    assert "queue_url" in str(result.warnings[0])


MINIMAL = {
    "apiVersion": "meshline.dev/v1alpha1",
    "kind": "Integration",
    "metadata": {"name": "m"},
    "spec": {
        "sources": [{"name": "a", "type": "file"}, {"name": "b", "type": "file", "config": None}],
        "targets": [{"name": "t", "type": "log"}],
        "triggers": [
            {"name": "tr", "target": "t"},
            {"name": "tr2", "target": "t", "delivery": {"deadLetter": "t"}},
        ],
        "tests": [{"name": "x", "inputs": {}, "expect": {}}],
    },
}


def test_defaults():
    out = apply_defaults(MINIMAL)
    assert MINIMAL["spec"]["triggers"][0] == {"name": "tr", "target": "t"}  # not modified
    assert out["metadata"]["description"] == ""
    spec = out["spec"]
    assert spec["parameters"] == [] and spec["transformations"] == [] and spec["deadLetter"] is None
    assert [s["config"] for s in spec["sources"]] == [{}, {}]
    assert spec["triggers"][0] == {
        "name": "tr",
        "target": "t",
        "description": "",
        "sources": ["a", "b"],
        "filters": [],
        "steps": [],
        "delivery": {
            "retries": 3,
            "backoff": {"policy": "exponential", "delay": "200ms", "max": "30s"},
            "deadLetter": None,
        },
    }
    assert spec["triggers"][1]["delivery"]["deadLetter"] == "t"


def test_spec_dead_letter_is_the_default_of_every_trigger():
    data = {**MINIMAL, "spec": {**MINIMAL["spec"], "deadLetter": "t"}}
    spec = apply_defaults(data)["spec"]
    assert [t["delivery"]["deadLetter"] for t in spec["triggers"]] == ["t", "t"]


def test_partial_backoff_gets_the_rest_of_the_defaults():
    trigger = {"name": "tr", "target": "t", "delivery": {"backoff": {"policy": "constant"}}}
    data = {**MINIMAL, "spec": {**MINIMAL["spec"], "triggers": [trigger]}}
    model = build_integration(apply_defaults(data))
    assert model.triggers[0].delivery == Delivery(3, Backoff("constant", 0.2, 30.0), None)
    assert model.sources[0].line == 0  # no location table given


def test_model_repr_masks_secret_marked_fields_and_secret_defaults():
    data = apply_defaults(
        {
            **MINIMAL,
            "spec": {
                **MINIMAL["spec"],
                "parameters": [{"name": "pw", "secret": True, "default": "d3fault"}],
                "targets": [
                    {
                        "name": "t",
                        "type": "elasticsearch",
                        "config": {"hosts": ["http://u:urlpw@h/"], "api_key": "tok3n", "index": "i"},
                    }
                ],
            },
        }
    )
    model = build_integration(data)
    text = repr(model)
    assert "tok3n" not in text and "d3fault" not in text and "urlpw" not in text
    assert "'hosts': ['http://u:***@h/'], 'api_key': '***', 'index': 'i'" in text
    assert model.target("t").config["api_key"] == "tok3n"
