"""Step limits: jq deadlines, the step child process, dead-letter reasons, the stop signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from meshline.compiler.plan import StepPlan, TriggerPlan
from meshline.compiler.router import Router
from meshline.config import ConfigError, parse_config
from meshline.events import CloudEvent
from meshline.transforms import jq as jqmod
from meshline.transforms.jq import JqError, JqTimeout, compile_jq
from meshline.transforms.jqc import clock
from meshline.transforms.limits import nonfinite_path
from meshline.transforms.steps import JqConfig, PythonConfig

# 2**25 outputs of a native reduction: seconds of work on any input
NATIVE_LOOP = "0 | reduce recurse(if . < 24 then (. + 1, . + 1) else empty end) as $x (0; . + 1)"


def ev(i: int = 0, **data) -> CloudEvent:
    return CloudEvent({"specversion": "1.0", "id": str(i), "source": "/t", "type": "t"}, data or {"n": i})


def routed(router: Router, events: list[CloudEvent]) -> list[tuple[str, CloudEvent]]:
    try:
        out = [x for e in events for x in router.route_batched(e, None)] + router.flush()
    finally:
        router.close()
    return [(tag, e) for tag, e, _ in out]


# --------------------------------------------------------------------------- jq


def test_native_loop_stops_at_its_deadline():
    prog = compile_jq(NATIVE_LOOP)
    assert prog.native and prog.loops
    with pytest.raises(JqTimeout):
        prog.run(None, timeout=0.2)
    with pytest.raises(JqTimeout):
        prog.first(None, timeout=0.2)


def test_a_deadline_is_per_thread_and_restored():
    with clock.deadline(0.0):
        time.sleep(0.01)
        with pytest.raises(JqTimeout):
            clock.check_deadline()
    clock.check_deadline()  # no deadline outside the block


def test_try_does_not_catch_a_timeout():
    prog = compile_jq(f"try ({NATIVE_LOOP}) catch 0")  # try/catch: libjq
    with pytest.raises(JqTimeout):
        prog.run(None, timeout=0.5)
    prog = compile_jq(f"[({NATIVE_LOOP})?]")
    assert prog.native
    with pytest.raises(JqTimeout):
        prog.run(None, timeout=0.2)


def test_straight_line_programs_never_loop():
    for program in [
        ".data.amount > 100",
        '.data.total = (.data.amount * .data.quantity) | .data.status = "big"',
    ]:
        prog = compile_jq(program)
        assert prog.straight is not None and not prog.loops
    # a walk of the input's own arrays written inline is linear in the input: no deadline needed
    assert not compile_jq("[.[] | . + 1]").loops
    assert compile_jq(f"[{NATIVE_LOOP}]").loops  # what repeats without bound does
    assert compile_jq(f"[.[] | [{NATIVE_LOOP}]]").loops  # also inside an inline walk


@pytest.mark.parametrize(
    "program", ["last(range(1e12))", "def f: f; f", "repeat(1) | empty", "[recurse(. + 1)]"]
)
def test_libjq_programs_that_never_end_are_stopped(program):
    prog = compile_jq(program)
    started = time.monotonic()
    with pytest.raises(JqTimeout):
        prog.run(0, timeout=0.5)
    assert jqmod._libjq_pool is not None
    # the helper was killed, the next call gets a fresh one and works
    assert compile_jq("def f: . + 1; f").run(1, timeout=5) == [2]
    assert time.monotonic() - started < 60


def test_libjq_results_and_errors_come_back_from_the_helper():
    assert compile_jq("[limit(3; range(10))]").run(None, timeout=5) == [[0, 1, 2]]
    assert compile_jq("first(repeat(true))").is_true(None, timeout=5)  # a filter stops at its first output
    assert compile_jq("def f: .; (f, 2)").run(1, timeout=5) == [1, 2]
    with pytest.raises(JqError, match="boom"):
        compile_jq('def f: error("boom"); f').run(1, timeout=5)
    big = 2**70
    assert compile_jq("def f: .; f").run({"n": big}, timeout=5) == [{"n": float(big)}]


def _jq_cases() -> list[tuple[str, object]]:
    """Every program and input of ``test_jq.py`` (native, error and fallback cases)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_jq_cases", Path(__file__).with_name("test_jq.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [*module.NATIVE_CASES, *module.ERROR_CASES, *module.FALLBACK_CASES]


def _outcome(program: str, value: object, timeout: float | None) -> tuple[str, object]:
    try:
        return ("ok", compile_jq(program).run(value, timeout))
    except JqError as e:
        return ("error", str(e))


def test_test_jq_programs_give_the_same_results_under_a_deadline():
    cases = _jq_cases()
    assert len(cases) > 250
    for program, value in cases:
        assert _outcome(program, value, 30.0) == _outcome(program, value, None), program


def test_ordinary_programs_give_the_same_results_under_a_deadline():
    value = {"a": [1, 2, {"b": 3}], "c": {"d": [4, 5]}, "s": "x"}
    for program in [
        "[.. | numbers]",
        "[paths]",
        "reduce .a[] as $x (0; . + ($x | numbers? // 0))",
        "[foreach .a[] as $x (0; . + 1; [$x, .])]",
        ".c.d |= map(. * 2)",
        "to_entries | map(.key)",
        "[recurse(.a?[]?) | type]",
        "[.a[], .c.d[]] | sort | unique",
    ]:
        prog = compile_jq(program)
        assert prog.run(value, timeout=30) == prog.run(value), program


# --------------------------------------------------------------------------- python steps


COUNTER = """\
import os
SEEN = []
def handle(event):
    SEEN.append(event.id)
    n = event.data["n"]
    if n == "sleep":
        import time
        time.sleep(3600)
    if n == "exit":
        os._exit(7)
    event.data["seen"] = list(SEEN)
    event.data["pid"] = os.getpid()
    return event
"""


def _python_router(code: str, timeout: str = "1s") -> Router:
    step = StepPlan("py", "python", {"code": code, "timeout": timeout})
    return Router([TriggerPlan("t", (), (step,), "out", "dlq")], "it")


def test_module_state_lives_across_events_and_restarts_after_a_kill():
    events = [ev(0, n="a"), ev(1, n="b"), ev(2, n="sleep"), ev(3, n="c"), ev(4, n="exit"), ev(5, n="d")]
    out = routed(_python_router(COUNTER), events)
    got = {e.id: (tag, e) for tag, e in out}
    assert got["1"][1].data["seen"] == ["0", "1"]  # one process, its module state kept
    assert got["0"][1].data["pid"] == got["1"][1].data["pid"]
    tag, dead = got["2"]
    assert tag == "dlq" and "python step timed out after 1s" in dead.attributes["meshlineerror"]
    assert dead.attributes["meshlinestep"] == "py" and dead.attributes["meshlineerrorstage"] == "transform"
    assert got["3"][1].data["seen"] == ["3"]  # a new process: the module starts over
    assert got["3"][1].data["pid"] != got["1"][1].data["pid"]
    tag, dead = got["4"]
    assert tag == "dlq" and "exited with status 7" in dead.attributes["meshlineerror"]
    assert got["5"][0] == "out" and got["5"][1].data["seen"] == ["5"]


@pytest.mark.parametrize(
    "body, reason",
    [
        ("raise SystemExit(3)", "SystemExit: 3"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("raise GeneratorExit('x')", "GeneratorExit: x"),
        ("event.data['x'] = float('nan')", "non-finite number at data.x"),
        ("event.data['x'] = [1, float('-inf')]", "non-finite number at data.x[1]"),
        ("return {'id': '1', 'source': 's', 'type': 't', 'data': {'y': float('inf')}}", "at data.y"),
    ],
)
def test_what_user_code_does_wrong_is_its_events_dead_letter(body, reason):
    code = f"def handle(event):\n    if event.id == '1':\n        {body}\n    return event\n"
    out = routed(_python_router(code), [ev(0), ev(1), ev(2)])
    assert sorted(e.id for tag, e in out if tag == "out") == ["0", "2"]
    ((dead,),) = [[e for tag, e in out if tag == "dlq"]]
    assert dead.id == "1" and reason in dead.attributes["meshlineerror"], dead.attributes


def test_a_null_in_the_output_is_not_taken_for_nan():
    code = "def handle(event):\n    event.data['x'] = None\n    return event\n"
    ((tag, e),) = routed(_python_router(code), [ev(0)])
    assert tag == "out" and e.data["x"] is None


def test_a_function_that_cannot_load_fails_at_start():
    from meshline.errors import TransformError

    with pytest.raises(TransformError, match="cannot load function"):
        Router(
            [TriggerPlan("t", (), (StepPlan("py", "python", {"function": "nope.nothing:here"}),), "o", None)],
            "it",
        )


def test_the_function_is_imported_with_the_parents_path_and_cwd(tmp_path, monkeypatch):
    (tmp_path / "mystep.py").write_text(
        "import os\ndef handle(event):\n    return event.replace(data=os.getcwd())\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    router = Router(
        [TriggerPlan("t", (), (StepPlan("py", "python", {"function": "mystep:handle"}),), "o", None)], "it"
    )
    ((tag, e),) = routed(router, [ev(0)])
    assert tag == "o" and e.data == str(tmp_path)


def test_nonfinite_path():
    assert nonfinite_path({"a": [1.0, {"b": float("nan")}]}) == "a[1].b"
    assert nonfinite_path({"a": [1.0, None, "NaN"]}) is None


# --------------------------------------------------------------------------- config


def test_every_step_type_takes_a_timeout_with_a_default():
    from meshline.registry import lookup

    for type_id in ["jq", "mapping", "python", "http", "xml2json", "xslt"]:
        component = lookup("transformation", type_id)
        assert component is not None
        assert "timeout" in component.schema()["properties"], type_id
    assert parse_config(JqConfig, {"program": "."}).timeout == 30.0
    assert parse_config(PythonConfig, {"code": "def handle(e): return e", "timeout": "1.5s"}).timeout == 1.5
    with pytest.raises(ConfigError, match="timeout"):
        parse_config(JqConfig, {"program": ".", "timeout": "soon"})


def test_jq_step_and_filter_reasons_name_the_timeout():
    step = StepPlan(
        "loop", "jq", {"program": f"if .data.n == 1 then ({NATIVE_LOOP}) else . end", "timeout": "0.2s"}
    )
    plans = [
        TriggerPlan("s", (), (step,), "out", "dlq"),
        TriggerPlan("f", ({"jq": f".data.n != 1 or ({NATIVE_LOOP}) > 0"},), (), "out", "dlq", 0.2),
    ]
    router = Router(plans, "it")
    out = router.route_many([ev(0, n=0), ev(1, n=1)])
    dead = {e.attributes["meshlinetrigger"]: e for tag, e in out if tag == "dlq"}
    assert sorted(e.id for tag, e in out if tag == "out") == ["0", "0"]
    assert dead["s"].attributes["meshlineerror"].endswith("timed out after 0.2s")
    assert dead["s"].attributes["meshlinestep"] == "loop"
    assert dead["f"].attributes["meshlineerrorstage"] == "filter"
    assert dead["f"].attributes["meshlineerror"].endswith("timed out after 0.2s")


# --------------------------------------------------------------------------- stop signals

STOPPER = """\
import os, signal, sys, time
sys.path.insert(0, {root!r})
import meshline.run as run
run.STOP_GRACE = {grace}
stopper = run.Stopper()
stopper.install()
try:
    print("ready", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    stopper.taken()  # as meshline run's stop path does
    print("unwinding", flush=True)
    time.sleep(60)  # a run that does not end
"""


@pytest.mark.parametrize("grace, second", [(60.0, True), (3.0, False)], ids=["second-signal", "grace"])
def test_a_second_signal_or_the_grace_period_ends_the_process(grace, second):
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen(
        [sys.executable, "-c", STOPPER.format(root=root, grace=grace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        line = proc.stdout.readline()
        assert line == "unwinding\n", (line, proc.wait(), proc.communicate()[1])
        if second:
            proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() == 128 + signal.SIGTERM  # the status of the first signal
        assert "Traceback" not in proc.communicate()[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_children_die_with_their_parent(tmp_path):
    """Meshline killed with SIGKILL: the fork server and the step processes go too."""
    root = str(Path(__file__).resolve().parents[2])
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {root!r})
        from meshline.compiler.plan import StepPlan, TriggerPlan
        from meshline.compiler.router import Router
        code = "import os\\ndef handle(e):\\n    return e.replace(data=os.getpid())\\n"
        r = Router([TriggerPlan("t", (), (StepPlan("p", "python", {{"code": code}}),), "o", None)], "it")
        from meshline.events import CloudEvent
        r.route_batched(CloudEvent({{"specversion": "1.0", "id": "1", "source": "s", "type": "t"}}, 1), None)
        ((_, e, _),) = r.flush()
        print(e.data, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        os.kill(child, 0)  # alive
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            _reap_if_ours(child)
            time.sleep(0.05)
        else:
            pytest.fail("the step process outlived its parent")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _reap_if_ours(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
