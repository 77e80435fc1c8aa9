"""Phase 3: the integration JSON Schema and its human error messages (meshline.spec.schema, schemacheck)."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import pytest
from jsonschema import Draft202012Validator

from meshline import registry
from meshline.config import doc, parse_duration
from meshline.spec import check_schema, integration_schema
from meshline.spec.schema import DURATION_PATTERN

VALID = {
    "apiVersion": "meshline.dev/v1alpha1",
    "kind": "Integration",
    "metadata": {"name": "orders", "description": "d"},
    "spec": {
        "parameters": [
            {"name": "queue_url", "required": True},
            {"name": "pw", "secret": True, "default": "x"},
        ],
        "sources": [{"name": "orders", "type": "aws.sqs", "config": {"queue_url": "q"}}],
        "transformations": [{"name": "normalize", "type": "jq", "config": {"program": "."}}],
        "targets": [{"name": "search", "type": "elasticsearch", "config": None}],
        "triggers": [
            {
                "name": "big-orders",
                "sources": ["orders"],
                "filters": [
                    {"exact": {"type": "com.amazon.sqs.message"}},
                    {"any": [{"prefix": {"source": "arn:"}}, {"not": {"suffix": {"subject": ".tmp"}}}]},
                    {"all": [{"cesql": "a = 'b'"}, {"jq": ".data.amount > 100"}]},
                ],
                "steps": ["normalize"],
                "target": "search",
                "delivery": {
                    "retries": 5,
                    "backoff": {"policy": "exponential", "delay": "200ms", "max": 30},
                    "deadLetter": "search",
                },
            }
        ],
        "deadLetter": "search",
        "tests": [
            {
                "name": "a big order",
                "inputs": {"orders": [{"type": "t", "id": "1", "data": {"amount": "150"}, "myext": 3}]},
                "expect": {"search": [{"type": "t", "data": {"amount": "150"}}], "other": []},
            }
        ],
    },
}


def _errors(change) -> list[str]:
    data = copy.deepcopy(VALID)
    change(data)
    return [f.text() for f in check_schema(data)]


def _trigger(data: dict) -> dict:
    return data["spec"]["triggers"][0]


def test_schema_is_a_valid_2020_12_schema():
    Draft202012Validator.check_schema(integration_schema())
    Draft202012Validator.check_schema(integration_schema(connectors=False))


def _properties(node, path=""):
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{path}.{name}", sub
        for key, sub in node.items():
            yield from _properties(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, f"{path}[{i}]")


def test_every_property_has_a_description():
    missing = [p for p, sub in _properties(integration_schema(connectors=False)) if "description" not in sub]
    assert missing == []


def test_valid_document_has_no_findings():
    assert check_schema(VALID) == []


@dataclass(frozen=True, kw_only=True)
class _FileConfig:
    path: str = doc("Where to write.")


def test_registered_connector_configs_are_embedded(monkeypatch):
    component = registry.Component(
        id="file", kind="target", config=_FileConfig, build=print, description="Files."
    )
    monkeypatch.setattr(registry, "ids", lambda kind: ["file"] if kind == "target" else [])
    monkeypatch.setattr(registry, "lookup", lambda kind, type_id: component if kind == "target" else None)
    schema = integration_schema()
    (branch,) = schema["$defs"]["target"]["allOf"]
    assert branch["if"] == {"properties": {"type": {"const": "file"}}, "required": ["type"]}
    assert branch["then"]["properties"]["config"]["properties"]["path"]["description"] == "Where to write."
    validator = Draft202012Validator(schema)
    data = copy.deepcopy(VALID)
    data["spec"]["targets"].append({"name": "f", "type": "file", "config": {"pth": "x"}})
    assert any("pth" in e.message for e in validator.iter_errors(data))


def test_a_broken_registry_does_not_break_the_schema(monkeypatch):
    def boom(kind, type_id):
        raise ImportError("no module named meshline.connectors.file")

    monkeypatch.setattr(registry, "ids", lambda kind: ["file"])
    monkeypatch.setattr(registry, "lookup", boom)
    assert "allOf" not in integration_schema()["$defs"]["source"]


@pytest.mark.parametrize("text", ["200ms", "30s", "5m", "1h", "2d", "1.5s", "10", " 3 s "])
def test_duration_pattern_accepts_what_parse_duration_accepts(text):
    assert re.search(DURATION_PATTERN, text)
    parse_duration(text)


@pytest.mark.parametrize("text", ["fast", "-1s", "1 sec", "s", "1.s", ""])
def test_duration_pattern_rejects_what_parse_duration_rejects(text):
    assert not re.search(DURATION_PATTERN, text)
    with pytest.raises(ValueError):
        parse_duration(text)


def test_type_error_says_expected_and_found():
    assert _errors(lambda d: _trigger(d).update(target=["a", "b"])) == [
        "spec.triggers[0].target: expected a string, found a list"
    ]
    assert _errors(lambda d: _trigger(d)["delivery"].update(retries="five")) == [
        "spec.triggers[0].delivery.retries: expected an integer, found the string 'five'"
    ]
    assert _errors(lambda d: d["spec"].update(sources={"name": "x"})) == [
        "spec.sources: expected a list, found a mapping"
    ]


def test_minimum_and_enum_and_const():
    assert _errors(lambda d: _trigger(d)["delivery"].update(retries=-1)) == [
        "spec.triggers[0].delivery.retries: expected an integer ≥ 0, found -1"
    ]
    assert _errors(lambda d: _trigger(d)["delivery"]["backoff"].update(policy="expo")) == [
        "spec.triggers[0].delivery.backoff.policy: expected one of 'constant', 'linear', 'exponential', "
        "found 'expo'; did you mean 'exponential'?"
    ]
    assert _errors(lambda d: d.update(apiVersion="v1")) == [
        "apiVersion: expected 'meshline.dev/v1alpha1', found 'v1'"
    ]


def test_bad_duration():
    assert _errors(lambda d: _trigger(d)["delivery"]["backoff"].update(delay="fast", max=-2)) == [
        "spec.triggers[0].delivery.backoff.delay: expected a duration like 200ms, 30s or 5m, found the "
        "string 'fast'",
        "spec.triggers[0].delivery.backoff.max: expected a duration like 200ms, 30s or 5m, found the number "
        "-2",
    ]


def test_metadata_name_must_be_a_dns_label():
    expected = (
        "expected a lowercase DNS label (a-z, 0-9 and '-', starting and ending with a letter or digit, "
        "at most 63 characters)"
    )
    assert _errors(lambda d: d["metadata"].update(name="Orders_To")) == [
        f"metadata.name: {expected}, found 'Orders_To'"
    ]
    assert _errors(lambda d: d["metadata"].update(name="a" * 64)) == [
        f"metadata.name: {expected}, found '{'a' * 57}…' (64 characters)"
    ]


def test_unknown_key_names_the_allowed_ones():
    assert _errors(lambda d: _trigger(d).update(retry=3)) == [
        "spec.triggers[0].retry: unknown key (expected one of: delivery, description, filterTimeout, "
        "filters, name, sources, "
        "steps, target)"
    ]


def test_misspelt_required_key_is_one_finding():
    def change(d):
        _trigger(d)["tagret"] = _trigger(d).pop("target")

    assert _errors(change) == [
        "spec.triggers[0].tagret: unknown key; did you mean 'target'? (expected one of: delivery, "
        "description, "
        "filterTimeout, filters, name, sources, steps, target)"
    ]


def test_missing_required_keys():
    assert _errors(lambda d: d.pop("kind")) == ["missing required key 'kind'"]
    assert _errors(lambda d: d["spec"]["sources"][0].pop("type")) == [
        "spec.sources[0]: missing required key 'type'"
    ]


def test_filter_dialects():
    dialects = "exact, prefix, suffix, all, any, not, cesql, jq"
    allowed = "all, any, cesql, exact, jq, not, prefix, suffix"
    cases = {
        "exakt": (
            {"exakt": {"type": "x"}},
            f"spec.triggers[0].filters[0].exakt: unknown filter dialect; did you mean 'exact'? "
            f"(expected one of: {allowed})",
        ),
        "two": (
            {"exact": {"type": "x"}, "jq": "true"},
            f"spec.triggers[0].filters[0]: expected exactly one of the filter dialects {dialects}, "
            "found 2 keys (exact, jq)",
        ),
        "empty": (
            {},
            f"spec.triggers[0].filters[0]: expected exactly one of the filter dialects {dialects}, "
            "found an empty mapping",
        ),
        "string": (
            "type = 'x'",
            f"spec.triggers[0].filters[0]: expected exactly one of the filter dialects {dialects}, "
            "found the string \"type = 'x'\"",
        ),
    }
    for filter_, message in cases.values():
        assert _errors(lambda d, f=filter_: _trigger(d).update(filters=[f])) == [message]


def test_nested_filters_are_checked_recursively():
    filters = [{"all": [{"any": [{"not": {"exact": {"Type": "x"}}}, {"cesql": 1}]}]}, {"any": []}]
    assert _errors(lambda d: _trigger(d).update(filters=filters)) == [
        "spec.triggers[0].filters[0].all[0].any[0].not.exact.Type: invalid key 'Type': expected a "
        "CloudEvents "
        "attribute name (lowercase letters and digits)",
        "spec.triggers[0].filters[0].all[0].any[1].cesql: expected a string, found the number 1",
        "spec.triggers[0].filters[1].any: expected at least 1 item, found an empty list",
    ]


def test_attribute_filters_need_string_values():
    assert _errors(lambda d: _trigger(d).update(filters=[{"exact": {"specversion": 1.0}}])) == [
        "spec.triggers[0].filters[0].exact.specversion: expected a string, found the number 1.0"
    ]


def test_trigger_sources_are_unique_and_not_empty():
    assert _errors(lambda d: _trigger(d).update(sources=["orders", "orders"])) == [
        "spec.triggers[0].sources: expected unique items, found 'orders' more than once"
    ]
    assert _errors(lambda d: _trigger(d).update(sources=[])) == [
        "spec.triggers[0].sources: expected at least 1 item, found an empty list"
    ]


def test_test_events_have_cloudevents_attribute_names():
    def change(d):
        d["spec"]["tests"][0]["inputs"]["orders"][0]["Type"] = "x"

    assert _errors(change) == [
        "spec.tests[0].inputs.orders[0].Type: unknown attribute; did you mean 'type'? (expected one of: "
        "data, "
        "data_base64, datacontenttype, dataschema, id, source, specversion, subject, time, type, or an "
        "extension "
        "attribute name of lowercase letters and digits)"
    ]


def test_every_error_is_reported():
    def change(d):
        d["metadata"]["name"] = "X"
        d["spec"]["sources"][0]["name"] = 3
        _trigger(d)["delivery"]["retries"] = True
        d["spec"]["extra"] = 1

    assert len(_errors(change)) == 4


def test_not_a_mapping_at_all():
    assert [f.text() for f in check_schema([])] == ["expected a mapping, found an empty list"]
