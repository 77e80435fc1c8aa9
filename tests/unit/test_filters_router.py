"""Attribute filters and the router (fan-out, indexing, dead letters), without Beam."""

from __future__ import annotations

import pytest

from meshline.compiler.plan import DROPPED, StepPlan, TriggerPlan
from meshline.compiler.router import Router
from meshline.events import CloudEvent
from meshline.transforms.filters import FilterStats, compile_filter, compile_filters, exact_index_key


def routed(router: Router, event: CloudEvent) -> list[tuple[str, CloudEvent]]:
    """Every ``(tag, event)`` the router gives for ``event`` (python steps are batched: flushed)."""
    try:
        out = router.route_batched(event, None) + router.flush()
    finally:
        router.close()
    return [(tag, e) for tag, e, _ in out]


def ev(type_="com.example.created", **attrs) -> CloudEvent:
    base = {"specversion": "1.0", "id": attrs.pop("id", "1"), "source": "/shop", "type": type_}
    base.update(attrs)
    return CloudEvent(base, {"amount": 150})


@pytest.mark.parametrize(
    "spec, event, expected",
    [
        ({"exact": {"type": "com.example.created"}}, ev(), True),
        ({"exact": {"type": "com.example.Created"}}, ev(), False),  # case-sensitive
        ({"exact": {"subject": "x"}}, ev(), False),  # missing attribute never matches
        ({"exact": {"priority": 3}}, ev(priority=3), True),  # integers compare in string form
        ({"exact": {"urgent": "true"}}, ev(urgent=True), True),
        ({"exact": {"type": "com.example.created", "source": "/shop"}}, ev(), True),
        ({"exact": {"type": "com.example.created", "source": "/other"}}, ev(), False),
        ({"prefix": {"type": "com.example."}}, ev(), True),
        ({"prefix": {"type": "org."}}, ev(), False),
        ({"suffix": {"type": ".created"}}, ev(), True),
        ({"suffix": {"subject": "x"}}, ev(), False),
        ({"all": [{"prefix": {"type": "com."}}, {"suffix": {"type": "created"}}]}, ev(), True),
        ({"all": [{"prefix": {"type": "com."}}, {"suffix": {"type": "deleted"}}]}, ev(), False),
        ({"any": [{"prefix": {"type": "org."}}, {"suffix": {"type": "created"}}]}, ev(), True),
        ({"any": []}, ev(), False),
        ({"all": []}, ev(), True),
        ({"not": {"exact": {"type": "com.example.created"}}}, ev(), False),
        ({"not": {"exact": {"subject": "x"}}}, ev(), True),
    ],
)
def test_attribute_dialects(spec, event, expected):
    assert compile_filter(spec)(event, FilterStats()) is expected


def test_filter_list_is_and_in_order_and_empty_matches_all():
    assert compile_filters([]) is None
    pred = compile_filters([{"prefix": {"type": "com."}}, {"exact": {"source": "/shop"}}])
    assert pred(ev(), FilterStats())
    assert not pred(ev(type_="org.x"), FilterStats())


def test_exact_index_key():
    assert exact_index_key([{"exact": {"type": "a"}}, {"jq": "."}]) == ("type", "a")
    assert exact_index_key([{"exact": {"type": "a", "source": "b"}}]) is None
    assert exact_index_key([{"prefix": {"type": "a"}}]) is None


def trig(name, filters=(), steps=(), target="out", dead="dlq"):
    return TriggerPlan(name, tuple(filters), tuple(steps), target, dead)


def test_fan_out_to_every_matching_trigger():
    router = Router(
        [
            trig("by-type", [{"exact": {"type": "com.example.created"}}], target="a"),
            trig("by-prefix", [{"prefix": {"type": "com."}}], target="b"),
            trig("other-type", [{"exact": {"type": "com.example.deleted"}}], target="c"),
            trig("everything", target="d"),
        ],
        "it",
    )
    out = list(router.route(ev()))
    assert sorted(tag for tag, _ in out) == ["a", "b", "d"]
    m = router.metrics()
    assert m["trigger.by-type.matched"] == 1
    assert m["trigger.other-type.matched"] == 0
    assert m["trigger.other-type.in"] == 1  # every trigger saw the event, even when skipped by the index


def test_many_exact_triggers_are_dispatched_by_index():
    router = Router(
        [trig(f"t{i}", [{"exact": {"type": f"type.{i}"}}], target=f"t{i}") for i in range(50)], "it"
    )
    assert [tag for tag, _ in router.route(ev(type_="type.37"))] == ["t37"]
    assert list(router.route(ev(type_="type.none"))) == []


def test_python_step_failure_dead_letters_the_input_event():
    code = (
        "def handle(event):\n"
        "    if event.data['amount'] > 100:\n"
        "        raise ValueError('too big')\n"
        "    return event\n"
    )
    router = Router(
        [trig("t", steps=[StepPlan("check", "python", {"code": code})], target="out", dead="dlq")], "it"
    )
    ((tag, dl),) = routed(router, ev())
    assert tag == "dlq"
    assert dl.attributes["meshlineerrorstage"] == "transform"
    assert dl.attributes["meshlinetrigger"] == "t"
    assert dl.attributes["meshlinestep"] == "check"
    assert dl.attributes["meshlineerror"] == "ValueError: too big"
    assert dl.data == {"amount": 150}
    assert router.metrics()["step.check.failed"] == 1


def test_failure_without_dead_letter_target_is_counted_not_lost():
    code = "def handle(event):\n    raise RuntimeError('boom')\n"
    router = Router([trig("t", steps=[StepPlan("s", "python", {"code": code})], dead=None)], "it")
    ((tag, _),) = routed(router, ev())
    assert tag == DROPPED
    assert "boom" in router.last_dropped_error


def test_python_step_can_split_drop_and_not_mutate_shared_input():
    code = (
        "def handle(event):\n"
        "    event.data['amount'] = 0\n"
        "    if event.attributes['id'] == 'drop':\n"
        "        return None\n"
        "    return [event, dict(event.to_dict(), type='copy')]\n"
    )
    router = Router(
        [trig("split", steps=[StepPlan("s", "python", {"code": code})]), trig("plain", target="raw")], "it"
    )
    original = ev()
    out = router.route_batched(original, None) + router.flush()
    out = [(tag, e) for tag, e, _ in out]
    assert original.data == {"amount": 150}
    by_tag = {}
    for tag, e in out:
        by_tag.setdefault(tag, []).append(e)
    assert [e.id for e in by_tag["out"]] == ["1-1", "1-2"]
    assert by_tag["raw"][0].data == {"amount": 150}
    assert routed(router, ev(id="drop")) == [("raw", ev(id="drop"))]
