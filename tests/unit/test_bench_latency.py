"""B9's and the soak's arithmetic: open-loop send times, nearest-rank percentiles, RSS growth, /proc trees."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import pytest

from bench.latency import (
    LatencyRow,
    cpu_seconds,
    latency_markdown,
    percentile,
    rss_mib,
    schedule,
    summary,
    tree,
)
from bench.soak import Sample, rss_growth


def test_send_times_are_fixed_by_the_rate_not_by_earlier_answers():
    times = list(schedule(50, 5, start=100.0))
    assert times == pytest.approx([100.0, 100.02, 100.04, 100.06, 100.08])
    assert len(list(schedule(500, 1000))) == 1000
    assert list(schedule(500, 1000))[-1] == pytest.approx(999 / 500)
    with pytest.raises(ValueError, match="rate"):
        list(schedule(0, 3))


def test_percentiles_are_nearest_rank_values_that_were_measured():
    values = list(range(1, 101))  # 1 … 100, shuffled order must not matter
    values.reverse()
    assert summary(values) == (50, 95, 99)
    assert percentile([0.3, 0.1, 0.2], 50) == 0.2
    assert percentile([0.3, 0.1, 0.2], 99) == 0.3
    assert percentile([7.0], 1) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 0)


def test_one_slow_event_in_a_hundred_shows_in_p99_only():
    values = [0.004] * 99 + [2.5]
    p50, p95, p99 = summary(values)
    assert (p50, p95) == (0.004, 0.004)
    assert p99 == 0.004  # nearest rank: the 99th of 100 values
    assert summary([0.004] * 98 + [2.5, 2.5])[2] == 2.5


def test_a_latency_row_reads_in_milliseconds():
    row = LatencyRow(
        "webhook → http", "prism", 50, 3000, (0.004, 0.09, 0.17), (0.13, 0.3, float("nan")), "1.0 0.9 0.8"
    )
    text = latency_markdown([row])
    assert "| webhook → http | prism | 50 | 3,000 | 4 | 90 | 170 | 130 | 300 | — | 1.0 0.9 0.8 |" in text


def _sample(minute: float, mib: float) -> Sample:
    return Sample(minute * 60, {"prism 1": mib / 2, "python 2": mib / 2}, 0, 0, 0, "")


def test_rss_growth_counts_from_minute_five_of_a_long_run():
    samples = [_sample(m, 100 + 10 * m) for m in (0.5, 2, 5, 10, 30)]  # 150 MiB at 5 min, 400 at 30
    growth, base = rss_growth(samples, 30)
    assert base == 5 and growth == pytest.approx(100 * (400 - 150) / 150)
    growth, base = rss_growth(samples[:3], 6)  # a short run: from a third of it
    assert base == 2 and growth == pytest.approx(100 * (150 - 120) / 120)


def test_a_process_tree_and_its_cpu_and_memory_come_from_proc():
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; subprocess.run([sys.executable, '-c', 'while 1: pass'])",
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while len(tree(child.pid)) < 2:  # the grandchild has started
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pids = tree(child.pid)
        assert pids[0] == child.pid and len(pids) == 2
        first = sum(cpu_seconds(pids).values())
        while sum(cpu_seconds(pids).values()) <= first:  # the busy grandchild's CPU is counted
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert all(mib > 1 for mib in rss_mib(pids).values())
    finally:
        for pid in reversed(tree(child.pid)):
            os.kill(pid, 9)
        child.wait()
    assert tree(child.pid) == []


def test_the_receivers_file_is_read_as_it_grows_keeping_first_arrivals_and_counts(tmp_path):
    from bench.b9 import Arrivals

    path = tmp_path / "arrivals.txt"
    arrivals = Arrivals(path)
    assert arrivals.read() == {}  # no file yet
    path.write_text("b9-0 10.5\nb9-1 10.75\nb9-0 11.0\nb9-2 12")  # the last line is still being written
    assert arrivals.read() == {"b9-0": 10.5, "b9-1": 10.75}
    with path.open("a") as f:
        f.write(".25\n")
    assert arrivals.read()["b9-2"] == 12.25
    assert arrivals.count == {"b9-0": 2, "b9-1": 1, "b9-2": 1}


def test_a_record_is_acknowledged_when_the_committed_offset_first_passes_it():
    from bench.b9 import KafkaLoad

    load = object.__new__(KafkaLoad)  # the arithmetic only: no broker
    load.commits = [(0.0, 0), (1.0, 3), (2.0, 10)]  # (time read, committed offset = next to read)
    load.offsets = {0: 0, 1: 2, 2: 3, 3: 9, 4: 10}
    assert load.ack_times([0, 1, 2, 3, 4]) == {0: 1.0, 1: 1.0, 2: 2.0, 3: 2.0}  # 4: not yet committed
