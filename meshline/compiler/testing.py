"""``meshline test``: run the ``tests:`` of an integration file (SPEC §6).

Each case runs the real compiled pipeline on Beam's in-process runner with the
named sources replaced by the case's events and every target replaced by an
in-memory collector. An expected event matches an actual one when every
attribute it lists is equal and, if it lists ``data`` (or ``data_base64``), its
data is equal; order does not matter and the counts must be equal (a maximum
bipartite matching, so partial expectations cannot steal each other's matches).
Targets a case does not list in ``expect`` are not checked.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.compiler.build import build_pipeline
from meshline.errors import EventError
from meshline.events import CloudEvent, dead_letter, from_json_dict

__all__ = ["CaseResult", "match_events", "run_case", "run_tests"]

_LOCK = threading.Lock()
_COLLECTED: dict[str, list[CloudEvent]] = {}


class _DecodeFn(beam.DoFn):
    def __init__(self, source: str):
        self._source = source

    def process(self, d: Any):
        try:
            yield from_json_dict(d, default_specversion=True)
        except EventError as e:
            bad = CloudEvent(
                {
                    "specversion": "1.0",
                    "id": "test-input",
                    "source": f"meshline://test/{self._source}",
                    "type": "dev.meshline.test.input",
                },
                d,
            )
            yield beam.pvalue.TaggedOutput("dead", dead_letter(bad, e, "decode", step=self._source))


class _TestSource(beam.PTransform):
    def __init__(self, name: str, events: Sequence[Any]):
        super().__init__()
        self._name = name
        self._events = list(events)

    def expand(self, pbegin):
        out = (
            pbegin
            | "Events" >> beam.Create(self._events, reshuffle=False)
            | "Decode" >> beam.ParDo(_DecodeFn(self._name)).with_outputs("dead", main="events")
        )
        return out.events, out.dead


class _CollectFn(beam.DoFn):
    def __init__(self, key: str):
        self._key = key

    def process(self, event: CloudEvent):
        with _LOCK:
            _COLLECTED.setdefault(self._key, []).append(event)
        return ()


class _Collect(beam.PTransform):
    def __init__(self, key: str):
        super().__init__()
        self._key = key

    def expand(self, events):
        return events | "Collect" >> beam.ParDo(_CollectFn(self._key)).with_output_types(CloudEvent)


@dataclass
class CaseResult:
    name: str
    passed: bool
    problems: list[str] = field(default_factory=list)


def _matches(expected: dict[str, Any], actual: CloudEvent) -> bool:
    attrs = actual.attributes
    for k, v in expected.items():
        if k == "data":
            if actual.data != v or isinstance(actual.data, bytes):
                return False
        elif k == "data_base64":
            if not isinstance(actual.data, bytes) or base64.b64encode(actual.data).decode() != v:
                return False
        elif k not in attrs or attrs[k] != v:
            if not (k in attrs and str(attrs[k]) == str(v)):
                return False
    return True


def match_events(expected: list[dict[str, Any]], actual: list[CloudEvent]) -> tuple[list[int], list[int]]:
    """Maximum matching; returns (unmatched expected indexes, unmatched actual indexes)."""
    edges = [[j for j, a in enumerate(actual) if _matches(e, a)] for e in expected]
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    unmatched_expected = [i for i in range(len(expected)) if not augment(i, set())]
    unmatched_actual = [j for j in range(len(actual)) if j not in owner]
    return unmatched_expected, unmatched_actual


def _short(value: Any) -> str:
    if isinstance(value, CloudEvent):
        value = value.to_dict()
    text = repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def run_case(integration: Any, case: Any) -> CaseResult:
    from meshline.runners import in_process_runner

    run_id = uuid.uuid4().hex
    sources = {s.name: _TestSource(s.name, case.inputs.get(s.name, [])) for s in integration.sources}
    targets = {t.name: _Collect(f"{run_id}/{t.name}") for t in integration.targets}
    pipeline = beam.Pipeline(runner=in_process_runner())
    build_pipeline(integration, pipeline, source_overrides=sources, target_overrides=targets)
    try:
        pipeline.run().wait_until_finish()
        with _LOCK:
            outputs = {t: _COLLECTED.pop(f"{run_id}/{t}", []) for t in targets}
    finally:
        with _LOCK:
            for t in targets:
                _COLLECTED.pop(f"{run_id}/{t}", None)
    problems: list[str] = []
    for target, expected in case.expect.items():
        actual = outputs.get(target, [])
        missing, extra = match_events(list(expected or []), actual)
        if not missing and not extra:
            continue
        problems.append(f"target {target}: expected {len(expected or [])} event(s), got {len(actual)}")
        problems += [f"  missing: {_short(expected[i])}" for i in missing]
        problems += [f"  unexpected: {_short(actual[j])}" for j in extra]
    return CaseResult(case.name, not problems, problems)


def run_tests(integration: Any) -> list[CaseResult]:
    return [run_case(integration, case) for case in integration.tests]
