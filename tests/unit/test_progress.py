"""The live progress line: every stage's counts, dead letters included, while a bundle is still running."""

from __future__ import annotations

import io
import threading

from meshline.compiler import dofn as dofn_module
from meshline.compiler import progress
from meshline.compiler.build import plan_triggers
from meshline.compiler.dofn import route_fn
from meshline.events import CloudEvent, EventBatch
from meshline.spec import load_text

FILE = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: p}
spec:
  sources: [{name: orders, type: file, config: {path: in.jsonl}}]
  transformations:
    - {name: total, type: jq, config: {program: '.data.total = (.data.amount | tonumber)'}}
  targets:
    - {name: out, type: file, config: {path: out}}
    - {name: rejects, type: file, config: {path: rejects}}
  triggers:
    - {name: big, filters: [{jq: '(.data.amount | tonumber) > 100'}], steps: [total], target: out}
  deadLetter: rejects
"""


def _integration():
    return load_text(FILE, "p.yaml", strict=False).integrations[0]


def _event(i: int, amount: str) -> CloudEvent:
    return CloudEvent({"specversion": "1.0", "id": str(i), "source": "s", "type": "t"}, {"amount": amount})


def test_the_router_reports_during_a_bundle_not_only_at_its_end(monkeypatch):
    monkeypatch.setattr(dofn_module, "_PROGRESS_INTERVAL", 0.0)  # every check reports
    integration = _integration()
    fn = route_fn("orders", plan_triggers(integration)["orders"], "p")
    fn.setup()
    with progress.Progress(stream=io.StringIO()):  # clears the totals; not a terminal: no thread
        fn.start_bundle()
        amounts = ["500", "5", "n/a", "200"] * 64 + ["500"] * 4  # 260 events: one check at 256
        for start in range(0, 256, 32):
            fn.process(EventBatch(_event(i, amounts[i]) for i in range(start, start + 32)))
        mid = progress.snapshot()
        for i in range(256, 260):
            fn.process(_event(i, amounts[i]))
        fn.finish_bundle()
        end = progress.snapshot()
    fn.teardown()
    # after 256 events, before the bundle ends, every stage of the chain is on the line
    assert mid["source.orders.in"] == 224  # reported before routing the batch that reached 256
    assert mid["trigger.big.matched"] == 112 and mid["target.out.in"] == 112
    assert mid["trigger.big.filter_errors"] == 56 and mid["target.rejects.in"] == 56
    assert mid["step.total.out"] == 112
    assert end["source.orders.in"] == 260 and end["target.out.in"] == 132 and end["target.rejects.in"] == 64
    line = progress.render(integration, end)
    assert line == (
        "orders 260 in | big 132 matched, 132 out, 64 failed | total 132 out"
        " | → out 132, rejects 64 | dead-lettered 64"
    )


def test_the_beam_counters_still_get_every_event_once(monkeypatch):
    monkeypatch.setattr(dofn_module, "_PROGRESS_INTERVAL", 0.0)
    integration = _integration()
    fn = route_fn("orders", plan_triggers(integration)["orders"], "p")
    fn.setup()
    counted: dict[str, int] = {}
    monkeypatch.setattr(
        fn, "_inc", lambda values: [counted.__setitem__(k, counted.get(k, 0) + v) for k, v in values.items()]
    )
    for _ in range(2):  # two bundles
        fn.start_bundle()
        for i in range(300):
            fn.process(_event(i, "500" if i % 3 else "n/a"))
        fn.finish_bundle()
    assert counted["source.orders.in"] == 600
    assert counted["trigger.big.in"] == 600 and counted["trigger.big.matched"] == 400
    assert counted["trigger.big.dead_lettered"] == 200 and counted["target.rejects.in"] == 200
    assert counted["target.out.in"] == 400 and counted["step.total.in"] == 400


def test_a_terminal_gets_the_line_redrawn(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide enough for the whole line

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    drawn = threading.Event()
    write = stream.write

    def spy(text: str) -> int:
        if "orders" in text:
            drawn.set()
        return write(text)

    stream.write = spy  # type: ignore[method-assign]
    with progress.Progress(stream=stream, interval=0.01, integration=_integration()):
        progress.add({"source.orders.in": 5, "target.rejects.dead_lettered": 1})
        assert drawn.wait(30)
    text = stream.getvalue()
    assert "\r\033[K[" in text and "orders 5 in" in text and "rejects 0 (1 undeliverable)" in text
    assert "dead-lettered 1" in text
    assert text.endswith("\r\033[K")  # the line is cleared when the run ends


def test_the_line_is_cut_to_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with progress.Progress(stream=stream, interval=0.01, integration=_integration()):
        progress.add({"source.orders.in": 5, "target.rejects.dead_lettered": 1})
        deadline = threading.Event()
        for _ in range(3000):  # until the line was drawn once (a poll, not a timing)
            if "orders" in stream.getvalue():
                break
            deadline.wait(0.01)
    lines = [x for x in stream.getvalue().split("\r\033[K") if x]
    assert lines and all(len(x) <= 39 for x in lines), lines
    assert lines[0].endswith("…")
