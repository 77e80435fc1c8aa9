"""The ``generate`` source: bounded with ``count``, unbounded with ``rate`` alone — decided in one place."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest

from meshline.compiler import build_pipeline
from meshline.compiler.summary import collect_counters
from meshline.runners import in_process_runner
from meshline.spec import load_text
from meshline.spec.resolve import resolve
from meshline.template import template_metadata


def _integration(config: dict, target: str = '{"name": "out", "type": "log"}'):
    text = (
        '{"apiVersion": "meshline.dev/v1alpha1", "kind": "Integration", "metadata": {"name": "g"}, '
        f'"spec": {{"sources": [{{"name": "in", "type": "generate", "config": {json.dumps(config)}}}], '
        f'"targets": [{target}], "triggers": [{{"name": "t", "target": "out"}}]}}}}'
    )
    (integration,) = load_text(text, "g.yaml").integrations
    return integration


@pytest.mark.parametrize(
    ("config", "unbounded"),
    [
        ({"count": 3}, False),
        ({"max_events": 3}, False),
        ({"count": 3, "rate": 10}, False),  # paced, and it ends
        ({"rate": 10}, True),
        ({"rate": 10, "max_events": 5}, True),  # a stream that a limit ends early, like a queue's
    ],
)
def test_rate_without_count_is_unbounded_for_run_template_and_compiler(config: dict, unbounded: bool):
    integration = _integration(config)
    assert template_metadata(integration).get("streaming", False) is unbounded
    assert resolve(integration).unbounded is unbounded  # meshline run: prism when unbounded
    assert resolve(integration).redelivering is False  # a generator never redelivers: no ledger


def test_a_queue_source_is_unbounded_and_redelivers():
    text = (
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: q}\nspec:\n"
        "  sources: [{name: in, type: aws.sqs, config: {queue_url: 'https://sqs.us-east-1.amazonaws.com/1/q'}}]\n"
        "  targets: [{name: out, type: log}]\n  triggers: [{name: t, target: out}]\n"
    )
    (integration,) = load_text(text, "q.yaml").integrations
    assert resolve(integration).unbounded and resolve(integration).redelivering


def test_the_rate_reader_paces_and_numbers_events():
    from meshline.connectors.generate import _RateReader

    reader = _RateReader({"data": {"n": "{n}"}}, "in", rate=1000.0)
    got = []
    while len(got) < 50:
        pulled = reader.pull(20, 1.0)
        assert 1 <= len(pulled) <= 20
        got.extend(pulled)
    assert [m.event.data["n"] for m in got] == [str(i) for i in range(len(got))]
    slow = _RateReader({}, "in", rate=0.01)
    assert len(slow.pull(10, 0.1)) == 1  # the first is due at once
    assert slow.pull(10, 0.05) == []  # the next in 100 s: an empty pull after the wait


def test_an_unbounded_generate_ends_at_max_events_on_the_direct_runner():
    integration = _integration({"rate": 500, "max_events": 40, "event": {"type": "tick"}})
    p = beam.Pipeline(runner=in_process_runner())
    build_pipeline(integration, p)
    result = p.run()
    result.wait_until_finish()
    counters = collect_counters(result)
    assert counters["source.in.in"] == 40 and counters["trigger.t.matched"] == 40


def test_a_resumed_read_goes_on_from_the_restrictions_count():
    """A read resumed by another DoFn instance (a new reader) does not start again from 0."""
    from meshline.connectors.generate import _RateReader

    reader = _RateReader({}, "in", rate=1000.0)
    reader.seek(25)
    assert [m.event.attributes["id"] for m in reader.pull(3, 1.0)][:1] == ["25"]
