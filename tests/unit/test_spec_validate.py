"""Phase 4 (references, registry, configs, filters, warnings) and the messages users see for mistakes."""

from __future__ import annotations

import copy
import sys
import types
from dataclasses import dataclass
from typing import Literal

import pytest

from meshline import registry
from meshline.config import doc
from meshline.errors import SpecError
from meshline.spec import check_references, load_text
from meshline.spec.validate import compile_filter_expression

# --------------------------------------------------------------------------- fakes


@dataclass(frozen=True, kw_only=True)
class SqsConfig:
    queue_url: str = doc("Queue URL.")
    region: str = doc("AWS region.", "us-east-1")
    endpoint_url: str | None = doc("Endpoint.", None)


@dataclass(frozen=True, kw_only=True)
class EsConfig:
    hosts: list[str] = doc("Hosts.")
    index: str = doc("Index.")
    username: str | None = doc("User.", None)
    password: str | None = doc("Password.", None)


@dataclass(frozen=True, kw_only=True)
class FileConfig:
    path: str = doc("Path.")
    format: Literal["jsonl", "avro", "parquet"] = doc("Format.", "jsonl")


@dataclass(frozen=True, kw_only=True)
class JqConfig:
    program: str = doc("Program.")


_FAKES = {
    ("source", "aws.sqs"): SqsConfig,
    ("source", "file"): FileConfig,
    ("target", "file"): FileConfig,
    ("target", "elasticsearch"): EsConfig,
    ("transformation", "jq"): JqConfig,
}
_PLANNED = {"source": ["kafka"], "target": ["snowflake"], "transformation": ["xslt"]}


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch):
    components = {
        key: registry.Component(id=key[1], kind=key[0], config=cls, build=print, description=key[1])  # type: ignore[arg-type]
        for key, cls in _FAKES.items()
    }
    monkeypatch.setattr(registry, "lookup", lambda kind, type_id: components.get((kind, type_id)))
    monkeypatch.setattr(registry, "ids", lambda kind: sorted(t for k, t in components if k == kind))
    monkeypatch.setattr(registry, "planned_ids", lambda kind: _PLANNED[kind])


class JqCompileError(Exception):
    pass


class CesqlParseError(Exception):
    pass


def _compile_jq(program: str) -> object:
    if program.count("(") != program.count(")"):
        raise JqCompileError("syntax error: unbalanced parentheses")
    return program


def _compile_cesql(expression: str) -> object:
    if "AND AND" in expression:
        raise CesqlParseError("1:10: unexpected token AND")
    return expression


@pytest.fixture(autouse=True)
def fake_compilers(monkeypatch):
    jq = types.ModuleType("meshline.transforms.jq")
    jq.compile_jq = _compile_jq  # type: ignore[attr-defined]
    jq.JqCompileError = JqCompileError  # type: ignore[attr-defined]
    cesql = types.ModuleType("meshline.transforms.cesql")
    cesql.compile_cesql = _compile_cesql  # type: ignore[attr-defined]
    cesql.CesqlParseError = CesqlParseError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "meshline.transforms.jq", jq)
    monkeypatch.setitem(sys.modules, "meshline.transforms.cesql", cesql)


# --------------------------------------------------------------------------- phase 4 on small dicts

SPEC = {
    "sources": [{"name": "orders", "type": "aws.sqs", "config": {"queue_url": "q"}}],
    "transformations": [{"name": "normalize", "type": "jq", "config": {"program": "."}}],
    "targets": [
        {"name": "search", "type": "elasticsearch", "config": {"hosts": ["h"], "index": "i"}},
        {"name": "rejects", "type": "file", "config": {"path": "./dl"}},
    ],
    "triggers": [{"name": "big", "sources": ["orders"], "steps": ["normalize"], "target": "search"}],
    "deadLetter": "rejects",
}


def _check(change=None) -> list[str]:
    spec = copy.deepcopy(SPEC)
    if change:
        change(spec)
    return [f"{f.severity}: {f.text()}" for f in check_references({"spec": spec})]


def test_valid_spec_has_no_findings():
    assert _check() == []


def test_unresolved_references_suggest_and_list():
    def change(spec):
        spec["triggers"][0].update(sources=["order"], steps=["normalise", "other"], target="serch")
        spec["triggers"][0]["delivery"] = {"deadLetter": "reject"}
        spec["deadLetter"] = "nowhere"

    assert _check(change) == [
        "error: spec.triggers[0].sources[0]: no source named 'order'; did you mean 'orders'? (sources: "
        "orders)",
        "error: spec.triggers[0].steps[0]: no transformation named 'normalise'; did you mean 'normalize'? "
        "(transformations: normalize)",
        "error: spec.triggers[0].steps[1]: no transformation named 'other' (transformations: normalize)",
        "error: spec.triggers[0].target: no target named 'serch'; did you mean 'search'? (targets: search, "
        "rejects)",
        "error: spec.triggers[0].delivery.deadLetter: no target named 'reject'; did you mean 'rejects'? "
        "(targets: search, rejects)",
        "error: spec.deadLetter: no target named 'nowhere' (targets: search, rejects)",
    ]


def test_reference_to_an_empty_section():
    def change(spec):
        del spec["transformations"]

    assert _check(change) == [
        "error: spec.triggers[0].steps[0]: no transformation named 'normalize': no transformations are "
        "declared "
        "in spec.transformations"
    ]


def test_duplicate_names():
    def change(spec):
        spec["targets"].append({"name": "search", "type": "file", "config": {"path": "x"}})
        spec["triggers"].append({"name": "big", "target": "search"})

    assert _check(change) == [
        "error: spec.targets[2].name: duplicate target name 'search' (spec.targets[0] has the same name)",
        "error: spec.triggers[1].name: duplicate trigger name 'big' (spec.triggers[0] has the same name)",
    ]


def test_unknown_and_planned_types():
    def change(spec):
        spec["sources"].append({"name": "k", "type": "kafka"})
        spec["sources"].append({"name": "f", "type": "fiel"})
        spec["targets"].append({"name": "x", "type": "nope"})

    assert _check(change)[:3] == [
        "error: spec.sources[1].type: source type 'kafka' is not available in this version of Meshline "
        "(available: aws.sqs, file)",
        "error: spec.sources[2].type: unknown source type 'fiel'; did you mean 'file'? (known: aws.sqs, "
        "file)",
        "error: spec.targets[2].type: unknown target type 'nope' (known: elasticsearch, file)",
    ]


def test_component_that_fails_to_import(monkeypatch):
    def boom(kind, type_id):
        raise ImportError("No module named 'boto3'")

    monkeypatch.setattr(registry, "lookup", boom)
    assert (
        _check()[0]
        == "error: spec.sources[0].type: source type 'aws.sqs' could not be loaded: No module named 'boto3'"
    )


def test_config_problems_are_located_at_their_keys():
    def change(spec):
        spec["targets"][0]["config"] = {"hosts": "h", "indx": "i", "pasword": "p"}
        spec["targets"][1]["config"] = {"path": 3, "format": "csv"}
        spec["sources"][0]["config"] = None

    assert _check(change) == [
        "error: spec.sources[0].config.queue_url: required key is missing",
        "error: spec.targets[0].config.indx: unknown key; did you mean 'index'? (expected one of: hosts, "
        "index, "
        "password, username)",
        "error: spec.targets[0].config.pasword: unknown key; did you mean 'password'? (expected one of: "
        "hosts, "
        "index, password, username)",
        "error: spec.targets[0].config.hosts: expected a list, got 'h'",
        "error: spec.targets[1].config.path: expected a string, got 3",
        "error: spec.targets[1].config.format: expected one of 'jsonl', 'avro', 'parquet', got 'csv'",
    ]


def test_filters_compile():
    def change(spec):
        spec["triggers"][0]["filters"] = [
            {"jq": ".data | (.a"},
            {"all": [{"not": {"cesql": "a = 1 AND AND b = 2"}}, {"cesql": "a = 1"}]},
        ]

    assert _check(change) == [
        "error: spec.triggers[0].filters[0].jq: invalid jq program: syntax error: unbalanced parentheses",
        "error: spec.triggers[0].filters[1].all[0].not.cesql: invalid CESQL expression: 1:10: unexpected "
        "token AND",
    ]


def test_filter_compilers_that_are_not_there_are_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "meshline.transforms.jq", None)  # import raises ImportError
    assert compile_filter_expression("jq", "((") is None
    assert (
        compile_filter_expression("cesql", "a AND AND b")
        == "invalid CESQL expression: 1:10: unexpected token AND"
    )


def test_backoff_delay_longer_than_max():
    def change(spec):
        spec["triggers"][0]["delivery"] = {"backoff": {"delay": "1m", "max": "30s"}}

    assert _check(change) == [
        "error: spec.triggers[0].delivery.backoff.delay: the first delay (1m) is longer than the maximum "
        "(30s)"
    ]


def test_own_target_as_dead_letter_is_fine():
    def change(spec):
        spec["triggers"][0]["delivery"] = {"deadLetter": "search"}

    assert _check(change) == []


def test_warnings_for_missing_dead_letter_and_unused_components():
    def change(spec):
        del spec["deadLetter"]
        spec["sources"].append({"name": "clicks", "type": "file", "config": {"path": "p"}})

    assert _check(change) == [
        "warning: spec.triggers[0]: trigger 'big' has no dead-letter target: failed events are only counted "
        "and "
        "logged (set spec.deadLetter or delivery.deadLetter)",
        "warning: spec.sources[1]: source 'clicks' is not read by any trigger",
        "warning: spec.targets[1]: target 'rejects' is not used by any trigger or dead letter",
    ]


def test_trigger_without_sources_reads_every_source():
    def change(spec):
        del spec["triggers"][0]["sources"]
        spec["sources"].append({"name": "clicks", "type": "file", "config": {"path": "p"}})

    assert _check(change) == []


def test_test_inputs_and_expect_keys():
    def change(spec):
        spec["tests"] = [{"name": "t", "inputs": {"ordres": []}, "expect": {"search": [], "rejetcs": []}}]

    assert _check(change) == [
        "error: spec.tests[0].inputs.ordres: no source named 'ordres'; did you mean 'orders'? (sources: "
        "orders)",
        "error: spec.tests[0].expect.rejetcs: no target named 'rejetcs'; did you mean 'rejects'? "
        "(targets: search, rejects)",
    ]


def test_malformed_parts_are_skipped_not_crashed_on():
    def change(spec):
        spec["sources"] = [3, {"name": ["x"]}, {"type": {}}]
        spec["triggers"] = [{"sources": "orders", "target": 5, "delivery": [], "filters": {"jq": 1}}, "x"]
        spec["targets"] = {"name": "x"}
        spec["tests"] = [{"inputs": [1], "expect": None}]

    _check(change)  # no exception
    assert check_references([]) == []
    assert check_references({"spec": 3}) == []


# --------------------------------------------------------------------------- what a user sees

FILE = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata:
  name: orders-to-search
spec:
  parameters:
    - name: queue_url
      required: true
  sources:
    - name: orders
      type: aws.sqs
      config:
        queue_url: ${params.queue_url}
  targets:
    - name: search
      type: elasticsearch
      config: {hosts: ["http://127.0.0.1:9200"], index: orders}
    - name: rejects
      type: file
      config: {path: ./dead-letters/}
  triggers:
    - name: big-orders
      target: search
      delivery:
        retries: 5
        backoff: {policy: exponential, delay: 200ms, max: 30s}
  deadLetter: rejects
"""


def _load_error(text: str, **kw) -> str:
    kw.setdefault("params", {"queue_url": "http://q"})
    with pytest.raises(SpecError) as info:
        load_text(text, "orders.yaml", env={}, **kw)
    return str(info.value)


def test_the_file_is_valid():
    result = load_text(FILE, "orders.yaml", params={"queue_url": "http://q"}, env={})
    assert result.warnings == []
    assert result.integrations[0].name == "orders-to-search"


def test_typo_in_target_name_suggests_the_right_one():
    text = FILE.replace("target: search", "target: serch")
    assert _load_error(text) == (
        "orders.yaml:23:15: spec.triggers[0].target: no target named 'serch'; did you mean 'search'? "
        "(targets: search, rejects)"
    )


def test_missing_required_param():
    assert _load_error(FILE, params={}) == (
        "orders.yaml:13:20: spec.sources[0].config.queue_url: missing value for required parameter "
        "'queue_url' "
        "(pass --param queue_url=VALUE)"
    )


def test_bad_duration():
    text = FILE.replace("delay: 200ms", "delay: 200 msec")
    assert _load_error(text) == (
        "orders.yaml:26:47: spec.triggers[0].delivery.backoff.delay: expected a duration like 200ms, 30s or "
        "5m, "
        "found the string '200 msec'"
    )


def test_unknown_key():
    text = FILE.replace("      delivery:\n", "      delivery:\n        retry: 2\n")
    assert _load_error(text) == (
        "orders.yaml:25:9: spec.triggers[0].delivery.retry: unknown key; did you mean 'retries'? "
        "(expected one of: backoff, deadLetter, retries)"
    )


def test_unknown_connector():
    text = FILE.replace("type: elasticsearch", "type: elastic")
    assert _load_error(text) == (
        "orders.yaml:16:13: spec.targets[0].type: unknown target type 'elastic'; did you mean "
        "'elasticsearch'? "
        "(known: elasticsearch, file)"
    )


def test_several_errors_are_all_reported_in_line_order():
    text = (
        FILE.replace("name: orders-to-search", "name: Orders")
        .replace("target: search", "target: serch")
        .replace("retries: 5", "retries: -1")
        .replace("type: aws.sqs", "type: kafka")
        .replace("deadLetter: rejects", "deadLetter: [rejects]")
    )
    assert _load_error(text).splitlines() == [
        "orders.yaml:4:9: metadata.name: expected a lowercase DNS label (a-z, 0-9 and '-', starting and "
        "ending with "
        "a letter or digit, at most 63 characters), found 'Orders'",
        "orders.yaml:11:13: spec.sources[0].type: source type 'kafka' is not available in this version of "
        "Meshline "
        "(available: aws.sqs, file)",
        "orders.yaml:23:15: spec.triggers[0].target: no target named 'serch'; did you mean 'search'? "
        "(targets: search, rejects)",
        "orders.yaml:25:18: spec.triggers[0].delivery.retries: expected an integer ≥ 0, found -1",
        "orders.yaml:27:15: spec.deadLetter: expected a string, found a list",
    ]


def test_warnings_are_returned_not_raised():
    text = FILE.replace("  deadLetter: rejects\n", "")
    result = load_text(text, "orders.yaml", params={"queue_url": "q"}, env={})
    assert [str(w) for w in result.warnings] == [
        "orders.yaml:22:7: warning: spec.triggers[0]: trigger 'big-orders' has no dead-letter target: "
        "failed events "
        "are only counted and logged (set spec.deadLetter or delivery.deadLetter)",
        "orders.yaml:18:7: warning: spec.targets[1]: target 'rejects' is not used by any trigger or dead "
        "letter",
    ][::-1]


def test_errors_carry_the_warnings():
    text = FILE.replace("  deadLetter: rejects\n", "").replace("retries: 5", "retries: -5")
    with pytest.raises(SpecError) as info:
        load_text(text, "orders.yaml", params={"queue_url": "q"}, env={})
    assert len(info.value.problems) == 1
    assert [w.severity for w in info.value.warnings] == ["warning", "warning"]  # type: ignore[attr-defined]


def test_several_documents_with_the_same_name():
    text = FILE + "---\n" + FILE
    assert _load_error(text) == (
        "orders.yaml:32:9: metadata.name: duplicate integration name 'orders-to-search' (also at line 4)"
    )


def test_several_documents():
    text = FILE + "---\n" + FILE.replace("orders-to-search", "second")
    result = load_text(text, "o.yaml", params={"queue_url": "q"}, env={})
    assert [i.name for i in result.integrations] == ["orders-to-search", "second"]
    assert [t.line for t in result.integrations[1].targets] == [43, 46]
