"""What a failed test case reports, and what ``--update`` writes: pairing, field differences, the rule."""

from __future__ import annotations

from meshline.compiler.testing import (
    ABSENT,
    CaseResult,
    compare_target,
    field_differences,
    updated_expectations,
)
from meshline.events import CloudEvent
from meshline.spec.model import TestCase


def ev(id: str, data=None, **attrs) -> CloudEvent:  # noqa: A002
    return CloudEvent({"specversion": "1.0", "id": id, "source": "s", "type": "t", **attrs}, data)


def test_only_the_differing_fields_are_reported_by_path():
    expected = {"id": "1", "type": "t", "subject": "x", "data": {"a": 1, "items": [{"q": 1}], "gone": 2}}
    actual = ev("1", {"a": 1, "items": [{"q": 3}], "extra": True})
    assert field_differences(expected, actual) == {
        "subject": ("x", ABSENT),
        "data.items[0].q": (1, 3),
        "data.gone": (2, ABSENT),
        "data.extra": (ABSENT, True),
    }
    assert field_differences({"priority": 1}, ev("1", priority="1")) == {}  # compared as text
    assert field_differences({"data": {"a": 1}}, ev("1", b"raw")) == {
        "data": ({"a": 1}, ABSENT),
        "data_base64": (ABSENT, "cmF3"),
    }


def test_pairs_by_id_first_then_by_overlap():
    expected = [{"id": "2", "data": {"n": 2}}, {"type": "t", "data": {"n": 1, "m": 1}}, {"id": "9"}]
    actual = [ev("1", {"n": 1, "m": 5}), ev("2", {"n": 20}), ev("3", None, type="other")]
    result = compare_target("out", expected, actual, (10, (11, 12, 13)))
    assert result is not None
    kinds = [(p.kind, p.line, p.id) for p in result.problems]
    assert kinds == [
        ("differs", 11, "2"),
        ("differs", 12, "1"),
        ("missing", 13, None),
        ("unexpected", 0, None),
    ]
    assert result.problems[0].fields == {"data.n": (2, 20)}
    assert result.problems[1].fields == {"data.m": (1, 5)}
    assert result.problems[3].actual["id"] == "3"
    assert (result.expected, result.actual, result.line) == (3, 3, 10)


def test_a_matching_target_reports_nothing_and_nothing_in_common_is_not_a_pair():
    assert compare_target("out", [{"id": "1"}], [ev("1")], (0, ())) is None
    result = compare_target("out", [{"type": "x", "subject": "y"}], [ev("1")], (0, ()))
    assert [p.kind for p in result.problems] == ["missing", "unexpected"]


def _case(expect, inputs=None) -> TestCase:
    return TestCase(
        name="c",
        inputs=inputs or {"in": [{"type": "t", "source": "s", "id": "1", "region": "eu"}]},
        expect=expect,
    )


def _result(case: TestCase, outputs: dict[str, list[CloudEvent]]) -> CaseResult:
    targets = [r for t, e in case.expect.items() if (r := compare_target(t, e, outputs.get(t, []), (0, ())))]
    return CaseResult("c", not targets, targets=targets, outputs=outputs)


def test_update_keeps_listed_fields_and_what_still_matches():
    case = _case({"out": [{"id": "1", "data": {"total": 999}}, {"id": "7", "priority": 1}], "rejects": []})
    outputs = {"out": [ev("1", {"total": 150.5}), ev("7", priority="1")]}
    new = updated_expectations(case, _result(case, outputs))
    # the expectation that still matches keeps its text (1, not "1"); rejects passed: untouched
    assert new == {"out": [{"id": "1", "data": {"total": 150.5}}, {"id": "7", "priority": 1}]}


def test_update_writes_new_events_as_id_changed_attributes_and_data():
    case = _case({"out": [], "rejects": [{"id": "gone"}]})
    failed = ev(
        "1",
        {"amount": "n/a"},
        region="eu",
        meshlineerror="jq error: cannot add",
        meshlineerrorstage="filter",
        meshlinetrigger="big",
    )
    outputs = {"out": [ev("1-0", {"n": 0}, type="t.split"), ev("1", b"\x00")], "rejects": [failed]}
    new = updated_expectations(case, _result(case, outputs))
    assert new["out"] == [
        {"id": "1-0", "type": "t.split", "data": {"n": 0}},  # an ID-N split compares with input 1
        {"id": "1", "data_base64": "AA=="},
    ]
    # the error message's wording is left out; stage and trigger say where it failed
    assert new["rejects"] == [
        {"id": "1", "meshlineerrorstage": "filter", "meshlinetrigger": "big", "data": {"amount": "n/a"}}
    ]
