"""The build phase: routing of dead letters from every stage, and the metrics a run reports."""

from __future__ import annotations

import apache_beam as beam

from meshline.compiler import build_pipeline
from meshline.compiler.summary import collect_counters, render_summary
from meshline.compiler.testing import _COLLECTED, _Collect, _TestSource
from meshline.events import CloudEvent, dead_letter
from meshline.runners import in_process_runner
from meshline.spec import load_text

SPEC = """
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: routing}
spec:
  sources:
    - {name: in, type: generate, config: {count: 1}}
  transformations:
    - {name: boom, type: python, config: {code: "def handle(e):\\n    raise ValueError('no')\\n"}}
  targets:
    - {name: store, type: log}
    - {name: broken, type: log}
    - {name: dlq, type: log}
  triggers:
    - name: keep
      filters: [{exact: {type: good}}]
      target: store
    - name: explode
      filters: [{exact: {type: bad}}]
      steps: [boom]
      target: store
    - name: rejected
      filters: [{exact: {type: reject}}]
      target: broken
    - name: jqfail
      filters: [{jq: '.data.n + "x"'}]
      target: store
  deadLetter: dlq
"""


class _RejectAll(beam.PTransform):
    """A target that rejects every event (as an index would reject a bad document)."""

    def expand(self, events):
        return events | beam.Map(lambda e: dead_letter(e, "mapping conflict", "deliver"))


def test_every_failure_reaches_the_dead_letter_target_with_its_stage():
    (integration,) = load_text(SPEC, "routing.yaml").integrations
    inputs = [
        {"id": "1", "source": "s", "type": "good", "data": {"n": "a"}},
        {"id": "2", "source": "s", "type": "bad", "data": {"n": "a"}},
        {"id": "3", "source": "s", "type": "reject", "data": {"n": "a"}},
        {"id": "4", "source": "s", "type": "other", "data": {"n": 1}},  # jq filter raises: number + string
        {"id": "5", "source": "s"},  # not a CloudEvent: no type
    ]
    p = beam.Pipeline(runner=in_process_runner())
    build_pipeline(
        integration,
        p,
        source_overrides={"in": _TestSource("in", inputs)},
        target_overrides={"store": _Collect("t/store"), "broken": _RejectAll(), "dlq": _Collect("t/dlq")},
    )
    result = p.run()
    result.wait_until_finish()
    store = _COLLECTED.pop("t/store", [])
    dlq = {e.attributes.get("id"): e for e in _COLLECTED.pop("t/dlq", [])}
    assert [e.id for e in store] == ["1"]
    assert dlq["2"].attributes["meshlineerrorstage"] == "transform"
    assert dlq["2"].attributes["meshlinestep"] == "boom"
    assert dlq["3"].attributes["meshlineerrorstage"] == "deliver"
    assert dlq["3"].attributes["meshlinetrigger"] == "rejected"  # the trigger that feeds the target
    assert dlq["4"].attributes["meshlineerrorstage"] == "filter"
    assert dlq["4"].attributes["meshlinetrigger"] == "jqfail"
    assert dlq["test-input"].attributes["meshlineerrorstage"] == "decode"
    assert len(dlq) == 4 and all(isinstance(e, CloudEvent) for e in dlq.values())

    counters = collect_counters(result)
    assert counters["source.in.in"] == 4
    assert counters["source.in.decode_errors"] == 1
    assert counters["trigger.keep.matched"] == 1
    assert counters["trigger.jqfail.filter_errors"] == 1
    assert counters["target.broken.dead_lettered"] == 1
    assert counters["target.dlq.in"] == 4
    table = render_summary(integration, counters)
    assert "dead-lettered" in table.splitlines()[0]
