"""Steps and filters that never end: their event is dead-lettered, the others land, Ctrl-C works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import rows_in

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

# Event n == 1 never ends; every other event takes the normal path. Native code loops
# (reduce over 2**25 outputs); libjq runs what the native compiler does not take (def, range).
NATIVE_LOOP = "(0 | reduce recurse(if . < 24 then (. + 1, . + 1) else empty end) as $x (0; . + 1))"
STUCK = {
    "jq-libjq": ("step", "jq", {"program": 'if .data.n == "1" then last(range(1e12)) else . end'}),
    "jq-recursion": ("step", "jq", {"program": 'def f: f; if .data.n == "1" then f else . end'}),
    "jq-native": ("step", "jq", {"program": f'if .data.n == "1" then {NATIVE_LOOP} else . end'}),
    "filter-libjq": ("filter", None, '.data.n != "1" or ([repeat(1)] | length > 0)'),
    "filter-native": ("filter", None, f'.data.n != "1" or {NATIVE_LOOP} > 0'),
    "py-sleep": ("step", "python", "time.sleep(3600)"),
    "py-socket": ("step", "python", "pair = socket.socketpair(); pair[0].recv(1)"),
    "py-c-loop": ("step", "python", "sum(range(10**15))"),
    "py-exit": ("step", "python", "raise SystemExit(3)"),
    "py-nan": ("step", "python", "event.data['x'] = float('nan')"),
}
REASONS = {
    "jq-libjq": "timed out after 1s",
    "jq-recursion": "timed out after 1s",
    "jq-native": "timed out after 1s",
    "filter-libjq": "timed out after 1s",
    "filter-native": "timed out after 1s",
    "py-sleep": "python step timed out after 1s",
    "py-socket": "python step timed out after 1s",
    "py-c-loop": "python step timed out after 1s",
    "py-exit": "SystemExit: 3",
    "py-nan": "non-finite number at data.x",
}


def _python(line: str) -> dict[str, object]:
    code = (
        "import socket, time\n"
        "def handle(event):\n"
        "    if event.data['n'] == '1':\n"
        f"        {line}\n"
        "    return event\n"
    )
    return {"code": code, "timeout": "1s"}


def _integration(out: Path) -> str:
    transformations, triggers, targets = [], [], []
    for name, (kind, type_, arg) in STUCK.items():
        targets.append(f'    - {{name: {name}, type: file, config: {{path: "{out}/{name}"}}}}')
        if kind == "filter":
            triggers.append(
                f"    - {{name: {name}, target: {name}, filterTimeout: 1s, filters: [{{jq: '{arg}'}}]}}"
            )
            continue
        config = _python(str(arg)) if type_ == "python" else {**arg, "timeout": "1s"}  # type: ignore[dict-item]
        transformations.append(f"    - {{name: {name}, type: {type_}, config: {_flow(config)}}}")
        triggers.append(f"    - {{name: {name}, target: {name}, steps: [{name}]}}")
    return "\n".join(
        [
            "apiVersion: meshline.dev/v1alpha1",
            "kind: Integration",
            "metadata: {name: stuck}",
            "spec:",
            "  sources:",
            "    - {name: gen, type: generate, config: {count: 3, event: {type: demo, data: {n: '{n}'}}}}",
            "  transformations:",
            *transformations,
            "  targets:",
            *targets,
            f'    - {{name: dlq, type: file, config: {{path: "{out}/dlq"}}}}',
            "  triggers:",
            *triggers,
            "  deadLetter: dlq",
        ]
    )


def _flow(value: object) -> str:
    return json.dumps(value)  # JSON is YAML


def _rows(folder: Path) -> list[dict]:
    return rows_in(folder)


def test_stuck_steps_and_filters_dead_letter_their_event_only(meshline, tmp_path: Path):
    out = tmp_path / "out"
    spec = tmp_path / "stuck.yaml"
    spec.write_text(_integration(out))
    r = meshline("run", str(spec), timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    dead = {row["meshlinetrigger"]: row for row in _rows(out / "dlq")}
    assert sorted(dead) == sorted(STUCK)
    for name, (kind, _, _) in STUCK.items():
        row = dead[name]
        assert row["id"] == "1", row
        assert row["meshlineerrorstage"] == ("filter" if kind == "filter" else "transform"), row
        assert row["meshlinestep"] == ("" if kind == "filter" else name), row
        assert REASONS[name] in row["meshlineerror"], row
        delivered = sorted(e["id"] for e in _rows(out / name))
        assert delivered == ["0", "2"], (name, delivered)


SLEEPER = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: sleeper}}
spec:
  sources:
    - {{name: gen, type: generate, config: {{count: 3, event: {{type: demo, data: {{n: '{{n}}'}}}}}}}}
  transformations:
    - name: sleep
      type: python
      config:
        timeout: 1h
        code: |
          import pathlib, time
          def handle(event):
              pathlib.Path({marker!r}).touch()
              time.sleep(3600)
  targets:
    - {{name: out, type: file, config: {{path: "{out}"}}}}
  triggers:
    - {{name: all, steps: [sleep], target: out}}
"""


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} after {seconds}s")
        time.sleep(0.05)


@pytest.mark.parametrize("runner", ["direct", "prism"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_a_run_whose_step_is_stuck(tmp_path: Path, runner: str, signum: int):
    if runner == "prism":
        from meshline.errors import RunnerError
        from meshline.runners.prism import find_prism

        try:
            find_prism(build=False)
        except RunnerError as e:  # `make test` builds it first (`make prism`)
            pytest.skip(f"no Prism binary: {e}")
    marker = tmp_path / "stuck"
    spec = tmp_path / "sleeper.yaml"
    spec.write_text(SLEEPER.format(marker=str(marker), out=tmp_path / "out"))
    exe = Path(sys.executable).parent / "meshline"
    proc = subprocess.Popen(
        [str(exe), "run", str(spec), "--runner", runner],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        _wait(lambda: marker.exists() or proc.poll() is not None, 180, "the step never started")
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signum)
        _wait(lambda: proc.poll() is not None, 10, f"still running 10s after {signum.name}")
        stderr = proc.communicate()[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr, stderr
    said = "terminated (SIGTERM); stopping" if signum == signal.SIGTERM else "interrupted; stopping"
    assert f"sleeper: {said}" in stderr, stderr
