"""``meshline schema`` as an editor uses it: a standard validator on the file as written.

The schema names the connector types of each list and each type's config keys, and accepts
``${params.X}`` / ``${env.X}`` wherever a value goes (an editor sees the file before
interpolation), so every pipelines/*.yaml and every docs example is valid against it, and
a misspelt type or key is flagged.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from meshline import registry
from meshline.spec import integration_schema
from tests.unit.test_docs import _YAML, Block, _integration_text

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = integration_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _messages(validator: Draft202012Validator, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_every_pipeline_is_valid_as_written(validator, path: Path):
    for doc in yaml.safe_load_all(path.read_text()):
        assert _messages(validator, doc) == [], path


_EXAMPLES = [b for b in _YAML if b.marker not in ("invalid", "triggermesh", "event", "prometheus")]


@pytest.mark.parametrize("block", _EXAMPLES, ids=lambda b: b.where)
def test_every_docs_example_is_valid(validator, block: Block):
    for doc in yaml.safe_load_all(_integration_text(block)):
        assert _messages(validator, doc) == [], block.where


VALID: dict[str, Any] = {
    "apiVersion": "meshline.dev/v1alpha1",
    "kind": "Integration",
    "metadata": {"name": "orders"},
    "spec": {
        "parameters": [{"name": "port", "default": 8080}, {"name": "idle", "default": "30s"}],
        "sources": [
            {"name": "in", "type": "file", "config": {"path": "in.jsonl"}},
            {
                "name": "hook",
                "type": "http",
                "config": {"port": "${params.port}", "idle_timeout": "${params.idle}"},
            },
        ],
        "transformations": [{"name": "x", "type": "jq", "config": {"program": "."}}],
        "targets": [{"name": "out", "type": "file", "config": {"path": "out", "format": "jsonl"}}],
        "triggers": [{"name": "t", "steps": ["x"], "target": "out"}],
    },
}


def test_the_valid_document_is_valid(validator):
    assert _messages(validator, VALID) == []


@pytest.mark.parametrize("section", ["sources", "transformations", "targets"])
def test_a_misspelt_type_is_flagged(validator, section: str):
    doc = copy.deepcopy(VALID)
    doc["spec"][section][0]["type"] = "fiel"
    messages = _messages(validator, doc)
    assert any(m.startswith(f"spec/{section}/0/type: 'fiel' is not one of") for m in messages), messages


def test_each_list_names_its_own_types(validator):
    doc = copy.deepcopy(VALID)
    doc["spec"]["targets"][0]["type"] = "generate"  # a source type
    assert any(m.startswith("spec/targets/0/type:") for m in _messages(validator, doc))
    kinds = {"sources": "source", "targets": "target", "transformations": "transformation"}
    schema = integration_schema()
    for section, kind in kinds.items():
        enum = schema["$defs"][kind]["properties"]["type"]["enum"]
        assert enum == registry.ids(kind), section  # type: ignore[arg-type]


def test_an_unknown_config_key_is_flagged(validator):
    doc = copy.deepcopy(VALID)
    doc["spec"]["targets"][0]["config"]["formt"] = "jsonl"
    messages = _messages(validator, doc)
    assert any(m.startswith("spec/targets/0/config:") and "'formt'" in m for m in messages), messages


def test_a_wrong_config_value_is_flagged_and_a_placeholder_is_not(validator):
    doc = copy.deepcopy(VALID)
    doc["spec"]["targets"][0]["config"]["format"] = "csv"
    doc["spec"]["sources"][1]["config"]["port"] = "eighty"
    messages = _messages(validator, doc)
    assert any(m.startswith("spec/targets/0/config/format:") for m in messages), messages
    assert any(m.startswith("spec/sources/1/config/port:") for m in messages), messages
    doc["spec"]["targets"][0]["config"]["format"] = "${env.FORMAT}"
    doc["spec"]["sources"][1]["config"]["port"] = "${params.port}"
    assert _messages(validator, doc) == []
