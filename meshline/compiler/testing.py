"""``meshline test``: run the ``tests:`` of an integration file (SPEC §6).

Each case runs the real compiled pipeline on Beam's in-process runner with the
named sources replaced by the case's events and every target replaced by an
in-memory collector. An expected event matches an actual one when every
attribute it lists is equal and, if it lists ``data`` (or ``data_base64``), its
data is equal; order does not matter and the counts must be equal (a maximum
bipartite matching, so partial expectations cannot steal each other's matches).
Targets a case does not list in ``expect`` are not checked.

When a target's events do not match, the expected events left over are paired
with the actual ones left over — by ``id`` first, then by how many of the
expected fields they share — and each pair is reported with only the fields
that differ (:class:`EventProblem`); what cannot be paired is ``missing`` or
``unexpected``. :func:`updated_expectations` turns a case's actual outputs into
new expectations for ``meshline test --update``.
"""

from __future__ import annotations

import base64
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.compiler.build import build_pipeline
from meshline.errors import EventError, MeshlineError
from meshline.events import CloudEvent, dead_letter, from_json_dict
from meshline.spec.model import Integration, TestCase
from meshline.spec.rewrite import ABSENT, flow

__all__ = [
    "CaseResult",
    "EventProblem",
    "TargetResult",
    "match_events",
    "run_case",
    "run_tests",
    "selected",
    "updated_expectations",
]

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
class EventProblem:
    """One expected event not found, or one actual event nobody expected, in one target.

    ``differs``: an expected event (at ``line``) and the actual event it was paired
    with; ``fields`` maps each differing field (``type``, ``data.total``,
    ``data.items[0].sku``) to ``(expected, actual)``, :data:`ABSENT` on the side
    that lacks it. ``missing``: ``expected`` is the event as written, nothing was
    left to pair it with. ``unexpected``: ``actual`` is the whole event.
    """

    kind: str  # "differs" | "missing" | "unexpected"
    line: int = 0
    id: Any = None  # differs: the id of the actual event
    expected: dict[str, Any] | None = None
    actual: dict[str, Any] | None = None
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)


@dataclass
class TargetResult:
    """A target whose events did not match: counts, and what differs."""

    target: str
    line: int
    expected: int
    actual: int
    problems: list[EventProblem] = field(default_factory=list)


@dataclass
class CaseResult:
    """One test case: passed, or why not.

    ``problems`` is the report as text lines (secrets masked); ``targets`` the same
    as data; ``outputs`` what every target received (for ``--update``); ``error``
    is set when the pipeline could not be built or run.
    """

    name: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    line: int = 0
    targets: list[TargetResult] = field(default_factory=list)
    outputs: dict[str, list[CloudEvent]] = field(default_factory=dict)
    error: str | None = None
    duration: float = 0.0


def _attribute_equal(expected: Any, actual: Any) -> bool:
    return actual == expected or str(actual) == str(expected)


def _data_equal(expected: Any, actual: CloudEvent) -> bool:
    return not isinstance(actual.data, bytes) and actual.data == expected


def _base64(actual: CloudEvent) -> str | None:
    if not isinstance(actual.data, bytes):
        return None
    return base64.b64encode(actual.data).decode()


def _matches(expected: dict[str, Any], actual: CloudEvent) -> bool:
    attrs = actual.attributes
    for k, v in expected.items():
        if k == "data":
            if not _data_equal(v, actual):
                return False
        elif k == "data_base64":
            if _base64(actual) != v:
                return False
        elif k not in attrs or not _attribute_equal(v, attrs[k]):
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


# --------------------------------------------------------------------------- differences


def _path(parent: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def _diff_values(expected: Any, actual: Any, path: str, out: dict[str, tuple[Any, Any]]) -> None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for k, v in expected.items():
            if k in actual:
                _diff_values(v, actual[k], _path(path, k), out)
            else:
                out[_path(path, k)] = (v, ABSENT)
        for k, v in actual.items():
            if k not in expected:
                out[_path(path, k)] = (ABSENT, v)
    elif isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for i, (e, a) in enumerate(zip(expected, actual)):
            _diff_values(e, a, _path(path, i), out)
    elif (
        type(expected) is not type(actual)
        and not (isinstance(expected, (int, float)) and isinstance(actual, (int, float)))
    ) or expected != actual:
        out[path] = (expected, actual)


def field_differences(expected: dict[str, Any], actual: CloudEvent) -> dict[str, tuple[Any, Any]]:
    """The fields ``expected`` lists that ``actual`` does not have equal, by dotted path."""
    out: dict[str, tuple[Any, Any]] = {}
    attrs = actual.attributes
    for k, v in expected.items():
        if k == "data":
            if isinstance(actual.data, bytes):
                out["data"] = (v, ABSENT)
                out["data_base64"] = (ABSENT, _base64(actual))
            elif actual.data is None and v is not None:
                out["data"] = (v, ABSENT)
            elif not _data_equal(v, actual):
                _diff_values(v, actual.data, "data", out)
        elif k == "data_base64":
            if _base64(actual) != v:
                out["data_base64"] = (v, _base64(actual) if isinstance(actual.data, bytes) else ABSENT)
        elif k not in attrs:
            out[k] = (v, ABSENT)
        elif not _attribute_equal(v, attrs[k]):
            out[k] = (v, attrs[k])
    return out


def _leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_leaves(v) for v in value.values()) or 1
    if isinstance(value, list):
        return sum(_leaves(v) for v in value) or 1
    return 1


def _overlap(expected: dict[str, Any], actual: CloudEvent) -> float:
    """How much of ``expected`` ``actual`` has: one per equal field, a fraction for partly equal data."""
    differing = field_differences(expected, actual)
    score = 0.0
    for k, v in expected.items():
        if k == "data":
            wrong = [p for p in differing if p == "data" or p.startswith(("data.", "data["))]
            score += 0.0 if "data" in differing else max(0.0, 1 - len(wrong) / _leaves(v))
        elif k not in differing:
            score += 1
    return score


def _pairs(expected: list[dict[str, Any]], actual: list[CloudEvent]) -> list[tuple[int, int]]:
    """Pairs (expected index, actual index) to compare: the same ``id`` first, then the best overlap."""
    pairs: list[tuple[int, int]] = []
    free = set(range(len(actual)))
    rest: list[int] = []
    for i, e in enumerate(expected):
        wanted = e.get("id")
        same = [
            j
            for j in sorted(free)
            if wanted is not None and str(actual[j].attributes.get("id")) == str(wanted)
        ]
        if same:
            best = max(same, key=lambda j: _overlap(e, actual[j]))
            pairs.append((i, best))
            free.discard(best)
        else:
            rest.append(i)
    scored = sorted(
        ((_overlap(expected[i], actual[j]), -i, -j) for i in rest for j in free),
        reverse=True,
    )
    taken_e: set[int] = set()
    for score, ni, nj in scored:
        i, j = -ni, -nj
        if score <= 0 or i in taken_e or j not in free:
            continue
        pairs.append((i, j))
        taken_e.add(i)
        free.discard(j)
    return sorted(pairs)


def compare_target(
    target: str, expected: list[dict[str, Any]], actual: list[CloudEvent], lines: tuple[int, tuple[int, ...]]
) -> TargetResult | None:
    """``None`` when ``actual`` matches ``expected``; else what differs."""
    missing, extra = match_events(expected, actual)
    if not missing and not extra:
        return None
    target_line, event_lines = lines

    def line(i: int) -> int:
        return event_lines[i] if i < len(event_lines) else 0

    result = TargetResult(target, target_line, len(expected), len(actual))
    pairs = _pairs([expected[i] for i in missing], [actual[j] for j in extra])
    paired_e = {missing[i] for i, _ in pairs}
    paired_a = {extra[j] for _, j in pairs}
    for i, j in pairs:
        e, a = expected[missing[i]], actual[extra[j]]
        fields = field_differences(e, a)
        result.problems.append(
            EventProblem(
                "differs",
                line(missing[i]),
                id=a.attributes.get("id"),
                expected={k: v for k, (v, _) in fields.items() if v is not ABSENT},
                actual={k: v for k, (_, v) in fields.items() if v is not ABSENT},
                fields=fields,
            )
        )
    for i in missing:
        if i not in paired_e:
            result.problems.append(EventProblem("missing", line(i), expected=expected[i]))
    for j in extra:
        if j not in paired_a:
            result.problems.append(EventProblem("unexpected", actual=actual[j].to_dict()))
    result.problems.sort(key=lambda p: (p.line == 0, p.line))
    return result


# --------------------------------------------------------------------------- rendering


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_target(result: TargetResult, file: str) -> list[str]:
    """Text lines of one target's differences (not redacted)."""

    def where(line: int) -> str:
        return f"{file}:{line}: " if line else ""

    counts = f"expected {result.expected} event(s), got {result.actual}"
    out = [f"{where(result.line)}target {result.target}: {counts}"]
    for p in result.problems:
        if p.kind == "differs":
            out.append(f"  {where(p.line)}the event with id {flow(p.id)} differs:")
            out.append("    expected: " + _short(flow({k: e for k, (e, _) in p.fields.items()})))
            out.append("    actual:   " + _short(flow({k: a for k, (_, a) in p.fields.items()})))
        elif p.kind == "missing":
            out.append(f"  {where(p.line)}missing: {_short(flow(p.expected))}")
        else:
            out.append(f"  unexpected: {_short(flow(p.actual))}")
    return out


# --------------------------------------------------------------------------- running


def run_case(integration: Integration, case: TestCase) -> CaseResult:
    from meshline.runners import in_process_runner

    started = time.monotonic()
    run_id = uuid.uuid4().hex
    sources = {s.name: _TestSource(s.name, case.inputs.get(s.name, [])) for s in integration.sources}
    targets = {t.name: _Collect(f"{run_id}/{t.name}") for t in integration.targets}
    try:
        pipeline = beam.Pipeline(runner=in_process_runner())
        build_pipeline(integration, pipeline, source_overrides=sources, target_overrides=targets)
        pipeline.run().wait_until_finish()
        with _LOCK:
            outputs = {t: _COLLECTED.pop(f"{run_id}/{t}", []) for t in targets}
    except Exception as e:
        if os.environ.get("MESHLINE_DEBUG"):
            raise
        what = str(e) if isinstance(e, MeshlineError) else f"{type(e).__name__}: {e}"
        message = integration.redactor.redact(" ".join(what.split()))
        return CaseResult(
            case.name,
            False,
            [f"the pipeline failed: {message}"],
            line=getattr(case, "line", 0),
            error=message,
            duration=time.monotonic() - started,
        )
    finally:
        with _LOCK:
            for t in targets:
                _COLLECTED.pop(f"{run_id}/{t}", None)
    lines = getattr(case, "expect_lines", {}) or {}
    results: list[TargetResult] = []
    for target, expected in case.expect.items():
        r = compare_target(target, list(expected or []), outputs.get(target, []), lines.get(target, (0, ())))
        if r is not None:
            results.append(r)
    file = getattr(integration, "file", "")
    problems = [integration.redactor.redact(line) for r in results for line in render_target(r, file)]
    return CaseResult(
        case.name,
        not results,
        problems,
        line=getattr(case, "line", 0),
        targets=results,
        outputs=outputs,
        duration=time.monotonic() - started,
    )


def selected(integration: Integration, case: TestCase, pattern: str | None) -> bool:
    """``-k PATTERN``: the case's name or ``INTEGRATION: NAME`` contains it (case-insensitive)."""
    if not pattern:
        return True
    return pattern.casefold() in f"{integration.name}: {case.name}".casefold()


def run_tests(integration: Integration, pattern: str | None = None) -> list[CaseResult]:
    return [run_case(integration, case) for case in integration.tests if selected(integration, case, pattern)]


# --------------------------------------------------------------------------- --update

#: Attributes a new expectation leaves out: the error message's wording is not the behaviour
#: under test (stage, trigger and step say where an event failed).
UNLISTED = ("specversion", "meshlineerror")
_FIRST = ("id", "type", "source", "subject")


def _input_of(case: Any, event: CloudEvent) -> dict[str, Any] | None:
    """The case's input the output came from: the same id, else ``ID-N`` of a split, else the only input."""
    inputs = [e for events in case.inputs.values() for e in (events or []) if isinstance(e, dict)]
    eid = str(event.attributes.get("id"))
    for e in inputs:
        if str(e.get("id")) == eid:
            return e
    for e in inputs:
        if eid.startswith(f"{e.get('id')}-"):
            return e
    return inputs[0] if len(inputs) == 1 else None


def _new_expectation(case: Any, event: CloudEvent) -> dict[str, Any]:
    source = _input_of(case, event)
    attrs = event.attributes
    out: dict[str, Any] = {"id": attrs.get("id")}
    names = [k for k in _FIRST if k in attrs] + sorted(k for k in attrs if k not in _FIRST)
    for k in names:
        if k in out or k in UNLISTED:
            continue
        if source is None or not _attribute_equal(source.get(k), attrs[k]) or k not in source:
            out[k] = attrs[k]
    if isinstance(event.data, bytes):
        out["data_base64"] = _base64(event)
    elif event.data is not None:
        out["data"] = event.data
    return out


def _rewritten(expected: dict[str, Any], actual: CloudEvent) -> dict[str, Any]:
    """An expectation that failed, with the actual values of the fields it lists."""
    if _matches(expected, actual):
        return expected
    out: dict[str, Any] = {}
    for k in expected:
        if k == "data" or k == "data_base64":
            if isinstance(actual.data, bytes):
                out["data_base64"] = _base64(actual)
            elif actual.data is not None:
                out["data"] = actual.data
        elif k in actual.attributes:
            out[k] = actual.attributes[k]
    return out


def updated_expectations(case: Any, result: CaseResult) -> dict[str, list[dict[str, Any]]]:
    """New ``expect`` lists for the targets of ``case`` that failed, from ``result.outputs``.

    The rule (docs/testing.md): an expectation that still matches an actual event is
    kept as written; one paired with an actual event (same ``id``, else the most
    fields in common) keeps the fields it lists, with the actual values; an actual
    event nobody expected gets ``id``, the attributes that differ from the input it
    came from (all but ``specversion`` and ``meshlineerror``) and its data; an
    expectation with no actual event left is dropped. Targets that passed, and
    targets the case does not list, are not touched.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for tr in result.targets:
        expected = list(case.expect.get(tr.target) or [])
        actual = result.outputs.get(tr.target, [])
        missing, extra = match_events(expected, actual)
        kept: dict[int, dict[str, Any]] = {}
        matched_actual = set(range(len(actual))) - set(extra)
        # expectations that matched keep their place and text
        unmatched = set(missing)
        for i in range(len(expected)):
            if i not in unmatched:
                kept[i] = expected[i]
        pairs = _pairs([expected[i] for i in missing], [actual[j] for j in extra])
        used = set(matched_actual)
        for i, j in pairs:
            kept[missing[i]] = _rewritten(expected[missing[i]], actual[extra[j]])
            used.add(extra[j])
        new = [kept[i] for i in sorted(kept)]
        new += [_new_expectation(case, actual[j]) for j in range(len(actual)) if j not in used]
        out[tr.target] = new
    return out
