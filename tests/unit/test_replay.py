"""`meshline replay`: where each dead letter goes again, what is stripped, what runs (meshline.replay)."""

from __future__ import annotations

import pytest

from meshline.events import CloudEvent, dead_letter
from meshline.replay import DeadLetter, Outcome, plan_replay, replay_model, route_of, strip
from meshline.spec import load_text
from meshline.transforms.cesql import compile_cesql

SPEC = """
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: routes}
spec:
  sources:
    - {name: a, type: generate, config: {count: 1}}
    - {name: b, type: generate, config: {count: 1}}
  transformations:
    - {name: step, type: jq, config: {program: '.'}}
  targets:
    - {name: one, type: log}
    - {name: two, type: log}
    - {name: dlq, type: log}
    - {name: special, type: log}
  triggers:
    - {name: first, sources: [a], steps: [step], target: one}
    - {name: second, sources: [a], target: two}
    - {name: third, sources: [b], target: one, delivery: {deadLetter: special}}
  deadLetter: dlq
"""


@pytest.fixture(scope="module")
def integration():
    return load_text(SPEC).integrations[0]


def _event(**extra) -> CloudEvent:
    return CloudEvent.create(id="1", source="/s", type="t", data={"n": 1}, **extra)


def test_filter_and_transform_failures_go_through_their_trigger_only(integration):
    for stage in ("filter", "transform"):
        r = route_of(dead_letter(_event(), "boom", stage, "first", "step"), integration)
        assert (r.kind, r.name, r.triggers, r.targets) == ("trigger", "first", ("first",), ("one",))
        assert r.source == "replay:trigger:first"


def test_delivery_failures_go_straight_to_the_target_of_the_named_triggers(integration):
    r = route_of(dead_letter(_event(), "down", "deliver", "first,third"), integration)
    assert (r.kind, r.name, r.triggers, r.targets) == ("target", "one", (), ("one",))
    r = route_of(dead_letter(_event(), "down", "deliver", "first,second"), integration)
    assert not r.replayable and "different targets" in r.reason


def test_decode_failures_are_decoded_again_for_the_source_triggers(integration):
    raw = '{"specversion":"1.0","id":"x","source":"/s","type":"t"}'
    bad = CloudEvent.create(id="f:1", source="file:///in", type="dev.meshline.file.line", data=raw)
    r = route_of(dead_letter(bad, "line 1: broken", "decode", step="a"), integration)
    assert (r.kind, r.triggers, r.targets) == ("source", ("first", "second"), ("one", "two"))
    _, planned = plan_replay([DeadLetter(dead_letter(bad, "x", "decode", step="a"), "f:1")], integration)
    assert planned[0].event is not None and planned[0].event.id == "x"
    still = CloudEvent.create(id="f:2", source="file:///in", type="dev.meshline.file.line", data="not json")
    _, planned = plan_replay([DeadLetter(dead_letter(still, "x", "decode", step="a"), "f:2")], integration)
    assert planned[0].event is None and "still is not a CloudEvent" in planned[0].route.reason


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (_event(), "not a dead letter"),
        (dead_letter(_event(), "x", "transform", "gone"), "no longer has"),
        (dead_letter(_event(), "x", "deliver", ""), "no trigger feeds"),
        (dead_letter(_event(), "x", "decode", step="nope"), "does not have"),
        (dead_letter(_event(), "x", "elsewhere"), "unknown meshlineerrorstage"),
    ],
)
def test_what_is_not_replayable_says_why(integration, event, reason):
    r = route_of(event, integration)
    assert not r.replayable and reason in r.reason


def test_strip_removes_every_meshline_attribute_and_nothing_else():
    failed = dead_letter(_event(meshlinecustom="x", other="kept"), "boom", "transform", "first", "step")
    stripped = strip(failed)
    assert stripped.attributes == {
        "specversion": "1.0",
        "id": "1",
        "source": "/s",
        "type": "t",
        "other": "kept",
    }
    assert stripped.data == {"n": 1}
    assert failed.attributes["meshlineerror"] == "boom"  # the dead letter itself is not changed


def test_where_selects_on_the_dead_letter_with_its_meshline_attributes(integration):
    letters = [
        DeadLetter(dead_letter(_event(), "x", "transform", "first", "step"), "1"),
        DeadLetter(dead_letter(_event(), "x", "deliver", "second"), "2"),
    ]
    read, planned = plan_replay(letters, integration, compile_cesql("meshlineerrorstage = 'deliver'"))
    assert read == 2 and [p.letter.where for p in planned] == ["2"]
    assert planned[0].event is not None and "meshlineerrorstage" not in planned[0].event.attributes


def test_replay_model_feeds_each_trigger_only_its_routes(integration):
    routes = [
        route_of(dead_letter(_event(), "x", "transform", "first", "step"), integration),
        route_of(dead_letter(_event(), "x", "deliver", "third"), integration),
    ]
    model, feeding = replay_model(integration, routes)
    assert [s.name for s in model.sources] == ["replay:target:one", "replay:trigger:first"]
    by_name = {t.name: t for t in model.triggers}
    assert by_name["first"].sources == ("replay:trigger:first",)
    assert by_name["second"].sources == () and by_name["third"].sources == ()
    direct = by_name["replay:target:one"]
    assert (direct.sources, direct.filters, direct.steps, direct.target) == (
        ("replay:target:one",),
        (),
        (),
        "one",
    )
    # first → spec.deadLetter, third → special: no common one, so the compiler falls back to spec's
    assert direct.delivery.dead_letter is None
    assert feeding == {"one": "first,third"}
    assert model.tests == () and model.targets == integration.targets


def test_outcome_is_ok_only_when_everything_was_delivered_or_dead_lettered_again():
    assert Outcome(selected=3, replayed=3, delivered=2, dead_lettered=1).ok
    assert not Outcome(selected=3, replayed=3, delivered=2, dead_lettered=0).ok
    assert not Outcome(selected=4, replayed=3, delivered=3, not_replayable=1).ok
    assert not Outcome(selected=3, replayed=3, delivered=2, dead_lettered=1, lost=1).ok
