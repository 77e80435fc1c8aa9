"""Every connector's declaration finds its Beam transform when a pipeline is built.

The declarations import no Beam (``test_cli_light.py``); ``build`` imports the
transform on first use. Building (not running) every ready pipeline, plus one file
for the connectors none of them uses, walks every one of those lazy imports.
"""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import pytest

from meshline import registry
from meshline.compiler import build_pipeline
from meshline.spec import load_file, load_text

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = sorted((ROOT / "pipelines").glob("*.yaml"))
AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)
EVENTHUBS = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v;EntityPath=hub"

REST = f"""\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: rest}}
spec:
  sources:
    - {{name: hub, type: azure.eventhubs, config: {{connection_string: "{EVENTHUBS}", max_events: 1}}}}
  transformations:
    - name: style
      type: xslt
      config:
        stylesheet: '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/>'
  targets:
    - {{name: mq, type: amqp, config: {{url: "amqp://127.0.0.1:1/", routing_key: q}}}}
    - {{name: gcs, type: google.storage, config: {{bucket: b, project: p}}}}
    - {{name: hook, type: http, config: {{url: "http://127.0.0.1:1/x"}}}}
    - {{name: lake, type: azure.datalake, config: {{connection_string: "{AZURITE}", container: lake}}}}
  triggers:
    - {{name: a, target: mq, steps: [style]}}
    - {{name: b, target: gcs}}
    - {{name: c, target: hook}}
    - {{name: d, target: lake}}
"""


def _build(integration) -> set[tuple[str, str]]:
    build_pipeline(integration, beam.Pipeline(), options={"runner": "direct"})
    return (
        {("source", s.type) for s in integration.sources}
        | {("target", t.type) for t in integration.targets}
        | {("transformation", t.type) for t in integration.transformations}
    )


@pytest.mark.filterwarnings("ignore")
def test_every_component_builds_its_beam_transform():
    built: set[tuple[str, str]] = set()
    params = {"lake_connection_string": AZURITE}
    for path in PIPELINES:
        declared = {p for i in load_file(path, strict=False).integrations for p in i.parameters}
        given = {k: v for k, v in params.items() if k in {p.name for p in declared}}
        for integration in load_file(path, params=given, strict=False).integrations:
            built |= _build(integration)
    for integration in load_text(REST, "rest.yaml", strict=False).integrations:
        built |= _build(integration)
    every = {(k, i) for k in ("source", "target", "transformation") for i in registry.ids(k)}  # type: ignore[arg-type]
    assert every - built == set()
