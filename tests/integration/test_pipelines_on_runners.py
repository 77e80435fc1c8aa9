"""pipelines/pubsub-archive.yaml, unchanged: streaming on Prism, and as a Dataflow Flex Template."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from tests.harness import rows_in
from tests.integration.pubsub_support import PROJECT, PubSub

pytestmark = pytest.mark.integration
PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "pubsub-archive.yaml"


def _params(host: str, sub: str, out: Path) -> list[str]:
    values = {
        "pubsub_project": PROJECT,
        "subscription": sub,
        "endpoint": host,
        "output": str(out),
        "idle": "5s",
    }
    return [arg for k, v in values.items() for arg in ("--param", f"{k}={v}")]


def test_archive_pipeline_streams_on_prism(meshline, pubsub_host, tmp_path):
    ps = PubSub(pubsub_host)
    topic, sub = ps.new_subscription()
    ids = ps.publish(topic, [(orjson.dumps({"n": i}), {"shop": "eu"}) for i in range(30)])
    out = tmp_path / "archive"
    r = meshline("run", str(PIPELINE), *_params(pubsub_host, sub, out), timeout=600)
    assert r.returncode == 0, r.stderr
    assert "using the prism runner" in r.stderr
    rows = rows_in(out, "**/part-*.jsonl")
    assert sorted(e["id"] for e in rows) == sorted(ids)
    assert all(e["shop"] == "eu" for e in rows)


def test_archive_pipeline_builds_a_flex_template(meshline, tmp_path):
    r = meshline("template", str(PIPELINE), "-o", str(tmp_path / "tpl"))
    assert r.returncode == 0, r.stderr
    metadata = json.loads((tmp_path / "tpl" / "metadata.json").read_text())
    names = {p["name"] for p in metadata["parameters"]}
    assert {"pubsub_project", "subscription", "endpoint", "output", "idle"} <= names
    assert "gcloud dataflow flex-template build" in r.stdout
