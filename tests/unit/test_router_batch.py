"""The router with batched steps: buffering, flush order, per-event failures, metrics, windows.

The batched step here is a fake transformation registered for the test (no network);
the ``http`` step's batch logic is tested in test_http_units.py and, against a real
server, in tests/integration/http/test_http_transform.py.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window

from meshline.compiler import plan as plan_module
from meshline.compiler.dofn import RouteFn, route_fn
from meshline.compiler.plan import DROPPED, StepPlan, TriggerPlan
from meshline.compiler.router import Router
from meshline.config import doc
from meshline.events import CloudEvent, EventBatch, each_event
from meshline.registry import Component
from meshline.transforms.results import BatchResult

CALLS: dict[str, list[list[str]]] = {}  # step name -> ids of each batch() call


@dataclass(frozen=True, kw_only=True)
class FakeConfig:
    size: int = doc("events per batch() call", 3)
    fail: list[str] = doc("ids whose result is an exception", [])
    split: list[str] = doc("ids answered with two events", [])
    drop: list[str] = doc("ids answered with None", [])
    extra: int = doc("events of the batch as a whole per call", 0)
    explode: bool = doc("batch() itself raises", False)


class FakeBatchStep:
    """Tags data with its name; per-event results chosen by id."""

    def __init__(self, config: FakeConfig, name: str):
        self.c = config
        self.name = name
        self.batch_size = config.size

    def __call__(self, event: CloudEvent) -> Any:
        (r,) = self.batch([event]).results
        if isinstance(r, BaseException):
            raise r
        return r

    def _one(self, e: CloudEvent) -> Any:
        if e.id in self.c.fail:
            return ValueError(f"{self.name} refused {e.id}")
        if e.id in self.c.drop:
            return None
        out = CloudEvent(dict(e.attributes), {**(e.data or {}), self.name: True})
        if e.id in self.c.split:
            return [out, CloudEvent({**e.attributes, "id": e.id + "-b"}, out.data)]
        return out

    def batch(self, events: list[CloudEvent]) -> BatchResult:
        CALLS.setdefault(self.name, []).append([e.id for e in events])
        if self.c.explode:
            raise RuntimeError("endpoint down")
        extra = [
            CloudEvent(
                {"specversion": "1.0", "id": f"x{i}", "source": "fn", "type": "summary"}, {"n": len(events)}
            )
            for i in range(self.c.extra)
        ]
        return BatchResult([self._one(e) for e in events], extra)


FAKE = Component(
    id="fakebatch",
    kind="transformation",
    config=FakeConfig,
    build=lambda config, ctx: FakeBatchStep(config, ctx.name),
    description="test only",
    batched=True,
)


@pytest.fixture(autouse=True)
def fake_step(monkeypatch):
    real = plan_module.lookup

    def lookup(kind, type_id):
        return FAKE if (kind, type_id) == ("transformation", "fakebatch") else real(kind, type_id)

    monkeypatch.setattr(plan_module, "lookup", lookup)
    CALLS.clear()


def ev(i: str, **data: Any) -> CloudEvent:
    return CloudEvent({"specversion": "1.0", "id": i, "source": "/s", "type": "t"}, {"n": i, **data})


def trig(name, steps, target="out", dead: str | None = "dlq", filters=()):
    return TriggerPlan(name, tuple(filters), tuple(steps), target, dead)


def fake(name="fn", **config) -> StepPlan:
    return StepPlan(name, "fakebatch", config)


def python(name, code) -> StepPlan:
    return StepPlan(name, "python", {"code": code})


def test_buffers_until_full_then_flushes_in_input_order_with_each_events_meta():
    router = Router([trig("t", [fake(size=3)])], "it")
    assert router.batched
    got = []
    for i in range(7):
        got.append(router.route_batched(ev(str(i)), f"meta{i}"))
    assert [len(g) for g in got] == [0, 0, 3, 0, 0, 3, 0]
    assert router.pending() == 1
    rest = router.flush()
    assert router.pending() == 0 and router.flush() == []
    out = [x for g in got for x in g] + rest
    assert [(tag, e.id, meta) for tag, e, meta in out] == [("out", str(i), f"meta{i}") for i in range(7)]
    assert all(e.data["fn"] is True for _, e, _ in out)
    assert CALLS["fn"] == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    m = router.metrics()
    assert (m["step.fn.in"], m["step.fn.out"], m["step.fn.failed"]) == (7, 7, 0)
    assert (m["trigger.t.in"], m["trigger.t.matched"], m["trigger.t.out"]) == (7, 7, 7)


def test_per_event_failure_dead_letters_the_triggers_original_event():
    prefix = python("prep", "def handle(event):\n    event.data['prepped'] = 1\n    return event\n")
    router = Router([trig("t", [prefix, fake(size=10, fail=["2", "4"], drop=["3"])])], "it")
    for i in range(6):
        assert router.route_batched(ev(str(i)), i) == []
    out = router.flush()
    delivered = [(e.id, meta) for tag, e, meta in out if tag == "out"]
    dead = {e.id: (e, meta) for tag, e, meta in out if tag == "dlq"}
    assert delivered == [("0", 0), ("1", 1), ("5", 5)]
    assert set(dead) == {"2", "4"}
    dl, meta = dead["2"]
    assert meta == 2
    assert dl.data == {"n": "2"}  # the trigger's input, not what the step was given
    assert dl.attributes["meshlineerrorstage"] == "transform"
    assert dl.attributes["meshlinetrigger"] == "t" and dl.attributes["meshlinestep"] == "fn"
    assert dl.attributes["meshlineerror"] == "ValueError: fn refused 2"
    m = router.metrics()
    assert (m["step.fn.in"], m["step.fn.out"], m["step.fn.failed"]) == (6, 3, 2)
    assert (m["step.prep.in"], m["step.prep.out"]) == (6, 6)
    assert (m["trigger.t.out"], m["trigger.t.transform_errors"], m["trigger.t.dead_lettered"]) == (3, 2, 2)


def test_batch_that_raises_fails_every_event_of_it():
    router = Router([trig("t", [fake(size=2, explode=True)], dead=None)], "it")
    out = router.route_batched(ev("a"), "ma") + router.route_batched(ev("b"), "mb")
    assert [(tag, e.id, meta) for tag, e, meta in out] == [(DROPPED, "a", "ma"), (DROPPED, "b", "mb")]
    assert "RuntimeError: endpoint down" in router.last_dropped_error
    m = router.metrics()
    assert m["step.fn.failed"] == 2 and m["trigger.t.transform_errors"] == 2


def test_split_event_is_all_or_nothing_across_a_later_step():
    # "1" splits into "1" and "1-b"; the later step refuses "1-b": the input "1" is
    # dead-lettered once and its sibling "1" is not delivered.
    after = python(
        "check",
        "def handle(event):\n    if event.attributes['id'] == '1-b':\n        raise ValueError('bad')\n"
        "    return event\n",
    )
    router = Router([trig("t", [fake(size=5, split=["0", "1"]), after])], "it")
    for i in range(3):
        router.route_batched(ev(str(i)), i)
    out = router.flush()
    assert sorted(e.id for tag, e, _ in out if tag == "out") == ["0", "0-b", "2"]
    ((dl, meta),) = [(e, meta) for tag, e, meta in out if tag == "dlq"]
    assert dl.id == "1" and meta == 1 and dl.attributes["meshlinestep"] == "check"
    m = router.metrics()
    assert (m["step.fn.in"], m["step.fn.out"]) == (3, 5)
    assert (m["trigger.t.out"], m["trigger.t.transform_errors"]) == (3, 1)


def test_outputs_of_the_batch_as_a_whole_are_their_own_origin():
    after = python(
        "check",
        "def handle(event):\n    if event.attributes['id'] == 'x1':\n        raise ValueError('no')\n"
        "    return event\n",
    )
    router = Router([trig("t", [fake(size=2, extra=2), after])], "it")
    # the python step is batched too: its results come out when the bundle ends
    out = router.route_batched(ev("a"), "ma") + router.route_batched(ev("b"), "mb") + router.flush()
    assert [(tag, e.id, meta) for tag, e, meta in out if tag == "out"] == [
        ("out", "a", "ma"),
        ("out", "b", "mb"),
        ("out", "x0", "ma"),  # the meta of the first event of the batch
    ]
    ((dl, meta),) = [(e, meta) for tag, e, meta in out if tag == "dlq"]
    assert dl.id == "x1" and dl.type == "summary" and meta == "ma"  # the output event itself
    m = router.metrics()
    assert m["step.fn.out"] == 4 and m["trigger.t.out"] == 3 and m["trigger.t.transform_errors"] == 1


def test_chained_batched_steps_flush_in_chain_order():
    router = Router([trig("t", [fake("one", size=2), fake("two", size=3)])], "it")
    out = []
    for i in range(7):
        out += router.route_batched(ev(str(i)), i)
    # "one" flushed 3 times; the 2nd flush filled "two" (4 >= 3), the 3rd left 2 there
    assert [e.id for _, e, _ in out] == ["0", "1", "2", "3"]
    assert router.pending() == 3  # "6" in one, "4", "5" in two
    out += router.flush()
    assert [(e.id, meta) for _, e, meta in out] == [(str(i), i) for i in range(7)]
    assert all(e.data["one"] and e.data["two"] for _, e, _ in out)
    assert CALLS["one"] == [["0", "1"], ["2", "3"], ["4", "5"], ["6"]]
    assert CALLS["two"] == [["0", "1", "2", "3"], ["4", "5", "6"]]
    assert router.pending() == 0


def test_unbatched_triggers_in_a_batched_router_are_immediate():
    router = Router(
        [
            trig("batched", [fake(size=10)], filters=[{"exact": {"type": "t"}}]),
            trig("plain", [], target="raw"),
        ],
        "it",
    )
    assert router.route_batched(ev("a"), "m") == [("raw", ev("a"), "m")]
    assert [(tag, e.id) for tag, e, _ in router.flush()] == [("out", "a")]


def test_batch_size_one_is_a_plain_step():
    router = Router([trig("t", [fake(size=1)])], "it")
    assert not router.batched
    ((tag, e),) = router.route(ev("a"))
    assert tag == "out" and e.data["fn"] is True


def test_routefn_picks_the_batched_dofn_only_when_needed():
    plain = route_fn("src", [trig("t", [])], "it")
    batched = route_fn("src", [trig("t", [fake(size=3)])], "it")
    assert type(plain) is RouteFn
    assert type(batched) is not RouteFn and isinstance(batched, RouteFn)
    assert type(pickle.loads(pickle.dumps(batched))) is type(batched)
    assert type(pickle.loads(pickle.dumps(plain))) is RouteFn


@pytest.mark.parametrize("size", [2, 100])  # flushed in process() / only in finish_bundle()
def test_beam_outputs_keep_their_own_timestamp_and_window(size):
    triggers = [trig("t", [fake(size=size, fail=["3"])])]
    expected = [(str(i), float(i * 10), float(i * 10 // 20 * 20)) for i in range(6) if i != 3]
    with beam.Pipeline() as p:
        events = (
            p
            | beam.Create(list(range(6)))
            | beam.Map(lambda i: window.TimestampedValue(ev(str(i)), i * 10))
            | beam.WindowInto(window.FixedWindows(20))
        )
        routed = events | beam.ParDo(route_fn("src", triggers, "it")).with_outputs("out", "dlq")

        def where(e, ts=beam.DoFn.TimestampParam, w=beam.DoFn.WindowParam):
            return e.id, float(ts), float(w.start)

        assert_that(routed.out | "Out" >> beam.Map(where), equal_to(expected), label="out")
        assert_that(routed.dlq | "Dead" >> beam.Map(where), equal_to([("3", 30.0, 20.0)]), label="dlq")


# --------------------------------------------------------------------------- EventBatch elements


def _routed_elements(elements, batch_tags):
    """RouteFn over Beam elements (events or EventBatch), by hand: its TaggedOutputs and its metrics."""
    triggers = [trig("t", []), TriggerPlan("bad", ({"jq": ".data.x.y"},), (), "out", "dlq")]
    fn = route_fn("src", triggers, "it", batch_tags)
    fn.setup()
    fn.start_bundle()
    out = []
    for element in elements:
        out.extend(fn.process(element) or [])
    metrics: dict[str, int] = {}
    fn._inc = metrics.update  # type: ignore[method-assign]
    fn.finish_bundle()
    return out, metrics


def _pairs(out):
    return sorted((o.tag, e.id) for o in out for e in each_event(o.value))


def _batch(n):
    return EventBatch([CloudEvent.create(id=str(i), source="s", type="t", data={"x": i}) for i in range(n)])


def test_a_batch_stays_one_element_for_targets_that_take_batches():
    out, _ = _routed_elements([_batch(4)], frozenset({"out", "dlq"}))
    by_tag = {o.tag: o.value for o in out}
    assert len(out) == 2
    # every event matches "t"; "bad" fails on every event (.x is a number): 4 dead letters
    assert type(by_tag["out"]) is EventBatch and [e.id for e in by_tag["out"]] == ["0", "1", "2", "3"]
    assert type(by_tag["dlq"]) is EventBatch and len(by_tag["dlq"]) == 4
    assert all(e.get("meshlinetrigger") == "bad" for e in by_tag["dlq"])


def test_a_batch_goes_event_by_event_to_other_targets_with_the_same_outputs_and_metrics():
    batch = _batch(4)
    out, metrics = _routed_elements([batch], frozenset({"dlq"}))
    assert [type(o.value).__name__ for o in out if o.tag == "out"] == ["CloudEvent"] * 4
    assert len([o for o in out if o.tag == "dlq"]) == 1  # one batch of 4 dead letters
    out_each, metrics_each = _routed_elements(list(batch), frozenset({"out", "dlq"}))
    assert len(out_each) == 8  # single events in: single events out, whatever the target takes
    assert _pairs(out) == _pairs(out_each)
    assert metrics == metrics_each
    assert metrics["source.src.in"] == 4 and metrics["target.dlq.in"] == 4
