"""The editor hookup works: every ready integration validates against what ``meshline schema`` prints.

docs/cli.md tells editors (VS Code's YAML extension, JetBrains IDEs) to use that
schema; a file an editor would flag but Meshline accepts would be a lie. These tests
go through the command, as an editor gets the schema.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import validators

from meshline.cli import main

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))


@pytest.fixture(scope="module")
def schema() -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema"]) == 0
    doc = json.loads(out.getvalue())
    validators.validator_for(doc).check_schema(doc)
    return doc


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_every_pipeline_validates_against_the_printed_schema(schema, path):
    validator = validators.validator_for(schema)(schema)
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert documents
    for doc in documents:
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]]


def test_placeholders_pass_where_values_go_and_mistakes_are_still_flagged(schema):
    validator = validators.validator_for(schema)(schema)
    doc = yaml.safe_load((ROOT / "pipelines" / "quickstart.yaml").read_text())
    target = next(t for t in doc["spec"]["targets"] if t["type"] == "file")
    target["config"].update(format="${params.format}", max_events="${env.MAX}", window="${params.w}")
    assert not list(validator.iter_errors(doc))
    target["config"]["format"] = "csv"  # a value written out is checked as Meshline checks it
    assert list(validator.iter_errors(doc))
    target["config"]["format"] = "jsonl"
    doc["spec"]["triggers"][0]["taget"] = doc["spec"]["triggers"][0].pop("target")
    assert list(validator.iter_errors(doc))


def test_the_documented_modeline_names_the_schema_command():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "# yaml-language-server: $schema=" in text
    assert "meshline schema > " in text
