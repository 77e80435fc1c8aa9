"""The benchmark harness measures each variant's own resources and refuses outputs that differ."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import harness
from bench.harness import Output, OutputMismatch, Scenario, canonical_json, jsonl_records, spawn_measured


def test_a_small_command_reports_a_small_peak_under_a_large_parent():
    ballast = bytearray(300 * 1024 * 1024)
    for i in range(0, len(ballast), 4096):  # touch every page: this process's RSS is now > 300 MiB
        ballast[i] = 1
    code, _, small_rss, _, _ = spawn_measured(["/bin/true"])
    assert code == 0
    assert small_rss < 50, small_rss  # the launcher's few MiB, not this process's 300
    grow = "b = bytearray(200 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1"
    code, cpu, big_rss, _, _ = spawn_measured([sys.executable, "-c", grow])
    del ballast
    assert code == 0
    assert 200 <= big_rss < 300, big_rss  # its own 200 MiB
    assert cpu > 0


def test_exit_status_and_stderr_of_a_failing_command_come_back():
    code, _, _, _, err = spawn_measured([sys.executable, "-c", "import sys; sys.exit('boom')"])
    assert code == 1 and b"boom" in err
    code, _, _, _, err = spawn_measured(["/nonexistent/command"])
    assert code == 127 and b"/nonexistent/command" in err


def test_canonical_json_spells_equal_numbers_alike():
    assert canonical_json({"b": 1176.0, "a": [1.5, 2.0]}) == canonical_json({"a": [1.5, 2], "b": 1176})
    assert canonical_json({"x": 1.5}) != canonical_json({"x": 1})


def _writer(lines: list[str]) -> str:
    """A command writing ``lines`` into ``sys.argv[1]/part.jsonl``."""
    return (
        "import pathlib, sys\n"
        "d = pathlib.Path(sys.argv[1]); d.mkdir(parents=True, exist_ok=True)\n"
        f"(d / 'part.jsonl').write_text({''.join(line + chr(10) for line in lines)!r})\n"
    )


def _scenario(variants: dict[str, list[str]], same_output=None) -> Scenario:
    def commands(n: int, dst: Path) -> dict[str, list[str]]:
        return {v: [sys.executable, "-c", _writer(lines), str(dst)] for v, lines in variants.items()}

    return Scenario(
        name="T",
        title="test",
        runner="none",
        commands=commands,
        records=jsonl_records,
        small=1,
        large=2,
        same_output=same_output,
    )


def test_variants_writing_the_same_records_pass(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "OUT", tmp_path)
    s = _scenario({"a": ['{"n": 1.0, "k": "x"}', '{"n": 2}'], "b": ['{"n": 2.0}', '{"k": "x", "n": 1}']})
    rows = harness.measure(s, 1, exact_repeat=True)
    assert [r.events_out for r in rows] == [2, 2]
    assert rows[0].digest == rows[1].digest == Output.of(jsonl_records(tmp_path / "t-out-a")).digest


def test_a_variant_that_skips_work_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "OUT", tmp_path)
    s = _scenario({"full": ['{"n": 1}', '{"n": 2}'], "lazy": ['{"n": 1}', '{"n": 3}']})
    with pytest.raises(OutputMismatch) as e:
        harness.measure(s, 1, exact_repeat=True)
    assert "'full' wrote 2 records" in str(e.value) and '{"n":2}' in str(e.value)


def test_groups_compare_only_their_own_variants(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "OUT", tmp_path)
    s = _scenario({"a": ['{"n": 1}'], "b": ['{"n": 1}'], "c": ['{"m": 9}']}, same_output=(("a", "b"), ("c",)))
    assert len(harness.measure(s, 1, exact_repeat=True)) == 3


def test_a_difference_below_resolution_is_no_rate() -> None:
    """Smoke sizes cost less CPU than the clock's noise: "—", never a rate of 10^11 events/s."""
    import math

    from bench.harness import _num, ratio

    assert ratio(200.0, 100.0) == "2.00x"
    assert ratio(math.nan, 100.0) == "—"
    assert ratio(100.0, math.nan) == "—"
    assert _num(math.nan) == "—"
    assert _num(12345.4) == "12,345"


def test_idle_cpu_counts_every_process_of_the_run():
    """bench.idle sums the CPU of a run's whole process tree: a busy grandchild counts."""
    import os
    import signal
    import subprocess

    from bench.idle import tree_cpu

    burn = (
        "import sys, time\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.3: pass\n"
        "print('burnt', flush=True)\n"
        "time.sleep(60)\n"
    )
    spawn = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {burn!r}])\n"
    parent = subprocess.Popen(
        [sys.executable, "-c", spawn], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "burnt\n"
        by_name = tree_cpu(parent.pid)
        assert sum(by_name.values()) >= 0.3, by_name  # the grandchild's 0.3 CPU-s at least
        assert all(name for name in by_name)
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # the parent and the sleeping grandchild
        parent.wait()
